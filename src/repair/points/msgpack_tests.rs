//! Tests of the MessagePack decoder, on answers built by a small encoder
//! here (the shapes InfluxDB writes; the tests in `tests/repair_cli.rs`
//! cover a real influxd's answers end to end).

use super::*;
use crate::repair::lp::FieldType;

/// A test-only encoder of the subset InfluxDB writes.
enum V {
    Nil,
    B(bool),
    I(i64),
    U(u64),
    F(f64),
    S(&'static str),
    A(Vec<V>),
    M(Vec<(&'static str, V)>),
}

fn enc(v: &V, out: &mut Vec<u8>) {
    match v {
        V::Nil => out.push(0xc0),
        V::B(b) => out.push(if *b { 0xc3 } else { 0xc2 }),
        V::I(i) if (-32..128).contains(i) => out.push(*i as i8 as u8),
        V::I(i) if i8::try_from(*i).is_ok() => out.extend([0xd0, *i as i8 as u8]),
        V::I(i) if i32::try_from(*i).is_ok() => {
            out.push(0xd2);
            out.extend((*i as i32).to_be_bytes());
        }
        V::I(i) => {
            out.push(0xd3);
            out.extend(i.to_be_bytes());
        }
        V::U(u) => {
            out.push(0xcf);
            out.extend(u.to_be_bytes());
        }
        V::F(f) => {
            out.push(0xcb);
            out.extend(f.to_bits().to_be_bytes());
        }
        V::S(s) => {
            if s.len() < 32 {
                out.push(0xa0 | s.len() as u8);
            } else {
                out.push(0xd9);
                out.push(s.len() as u8);
            }
            out.extend(s.as_bytes());
        }
        V::A(items) => {
            if items.len() < 16 {
                out.push(0x90 | items.len() as u8);
            } else {
                out.push(0xdc);
                out.extend((items.len() as u16).to_be_bytes());
            }
            items.iter().for_each(|i| enc(i, out));
        }
        V::M(items) => {
            out.push(0x80 | items.len() as u8);
            for (k, v) in items {
                enc(&V::S(k), out);
                enc(v, out);
            }
        }
    }
}

fn answer(series: Vec<V>) -> Vec<u8> {
    let v = V::M(vec![(
        "results",
        V::A(vec![V::M(vec![
            ("statement_id", V::I(0)),
            ("series", V::A(series)),
            ("partial", V::B(true)),
        ])]),
    )]);
    let mut out = Vec::new();
    enc(&v, &mut out);
    out
}

fn types() -> Types {
    let f: std::collections::BTreeMap<String, FieldType> = [
        ("f", FieldType::Float),
        ("i", FieldType::Integer),
        ("u", FieldType::Unsigned),
        ("s x", FieldType::String),
        ("b", FieldType::Boolean),
    ]
    .into_iter()
    .map(|(k, t)| (k.to_string(), t))
    .collect();
    [("cpu load".to_string(), f)].into()
}

fn cpu(rows: Vec<V>) -> V {
    V::M(vec![
        ("name", V::S("cpu load")),
        (
            "tags",
            V::M(vec![
                ("z", V::S("a,b=c d")),
                ("empty", V::S("")),
                ("a", V::S("x")),
            ]),
        ),
        (
            "columns",
            V::A(["time", "b", "f", "i", "s x", "u"].map(V::S).into()),
        ),
        ("values", V::A(rows)),
    ])
}

#[test]
fn rows_become_typed_lines() {
    let obj = answer(vec![cpu(vec![
        V::A(vec![
            V::I(5),
            V::B(true),
            V::F(1.0),
            V::I(-300),
            V::S("say \"hi\" \\o/"),
            V::U(u64::MAX),
        ]),
        V::A(vec![
            V::I(1_700_000_000_000_000_000),
            V::Nil,
            V::I(2),
            V::I(7),
            V::Nil,
            V::Nil,
        ]),
        // No fields: no line.
        V::A(vec![V::I(9), V::Nil, V::Nil, V::Nil, V::Nil, V::Nil]),
    ])]);
    let mut l = Lines::new(100);
    l.chunk(&obj, &types()).unwrap();
    assert_eq!(
        l.body,
        "cpu\\ load,a=x,z=a\\,b\\=c\\ d b=true,f=1,i=-300i,s\\ x=\"say \\\"hi\\\" \\\\o/\",u=18446744073709551615u 5\n\
         cpu\\ load,a=x,z=a\\,b\\=c\\ d f=2,i=7i 1700000000000000000\n"
    );
    assert_eq!(l.n, 2);
    assert!(l.full.is_empty());
}

#[test]
fn bodies_are_cut_at_the_batch_size() {
    let rows = (0..5)
        .map(|t| V::A(vec![V::I(t), V::Nil, V::F(0.5), V::Nil, V::Nil, V::Nil]))
        .collect();
    let obj = answer(vec![cpu(rows)]);
    let mut l = Lines::new(2);
    l.chunk(&obj, &types()).unwrap();
    assert_eq!(l.full.len(), 2);
    assert!(
        l.full
            .iter()
            .all(|(b, n)| *n == 2 && b.lines().count() == 2)
    );
    assert_eq!((l.n, l.body.lines().count()), (1, 1));
}

#[test]
fn an_unknown_field_leaves_nothing_behind() {
    let mut t = types();
    let before = answer(vec![cpu(vec![V::A(vec![
        V::I(1),
        V::Nil,
        V::F(0.5),
        V::Nil,
        V::Nil,
        V::Nil,
    ])])]);
    let mut l = Lines::new(2);
    l.chunk(&before, &t).unwrap();
    let obj = answer(vec![cpu((0..4)
        .map(|i| V::A(vec![V::I(i), V::Nil, V::F(0.5), V::Nil, V::Nil, V::Nil]))
        .chain([V::A(vec![V::I(9), V::Nil, V::Nil, V::Nil, V::Nil, V::U(3)])])
        .collect())]);
    t.get_mut("cpu load").unwrap().remove("u");
    let snapshot = (l.body.clone(), l.n, l.full.len());
    assert_eq!(
        l.chunk(&obj, &t),
        Err(MsgpackError::UnknownField("u".into()))
    );
    assert_eq!((l.body.clone(), l.n, l.full.len()), snapshot);
    // An unknown column that is null everywhere is no error.
    let nulls = answer(vec![cpu(vec![V::A(vec![
        V::I(1),
        V::Nil,
        V::F(0.5),
        V::Nil,
        V::Nil,
        V::Nil,
    ])])]);
    l.chunk(&nulls, &t).unwrap();
}

#[test]
fn statement_errors_and_not_found() {
    let err = |msg: &'static str| {
        let v = V::M(vec![(
            "results",
            V::A(vec![V::M(vec![("error", V::S(msg))])]),
        )]);
        let mut out = Vec::new();
        enc(&v, &mut out);
        out
    };
    let mut l = Lines::new(10);
    assert!(l.chunk(&err("database not found: x"), &types()).is_ok());
    assert_eq!(
        l.chunk(&err("boom"), &types()),
        Err(MsgpackError::Node("boom".into()))
    );
}

#[test]
fn object_len_finds_the_end_of_each_chunk() {
    let a = answer(vec![cpu(vec![V::A(vec![
        V::I(1),
        V::Nil,
        V::F(0.5),
        V::Nil,
        V::Nil,
        V::Nil,
    ])])]);
    let mut two = a.clone();
    two.extend(&a);
    assert_eq!(object_len(&two), Ok(Some(a.len())));
    for cut in 0..a.len() {
        assert_eq!(object_len(&a[..cut]), Ok(None), "cut at {cut}");
    }
}

#[test]
fn every_integer_width_decodes() {
    for (bytes, want) in [
        (vec![0x7f], Val::Int(127)),
        (vec![0xe0], Val::Int(-32)),
        (vec![0xcc, 0xff], Val::Uint(255)),
        (vec![0xcd, 0x01, 0x00], Val::Uint(256)),
        (vec![0xd0, 0x80], Val::Int(-128)),
        (vec![0xd1, 0xff, 0xfe], Val::Int(-2)),
        (vec![0xd2, 0x80, 0, 0, 0], Val::Int(i64::from(i32::MIN))),
        (vec![0xd3, 0x80, 0, 0, 0, 0, 0, 0, 0], Val::Int(i64::MIN)),
        (vec![0xca, 0x3f, 0xc0, 0, 0], Val::Float(1.5)),
        (vec![0xda, 0, 2, b'h', b'i'], Val::Str("hi")),
    ] {
        assert_eq!(Cursor::new(&bytes).item(), Ok(want));
    }
}
