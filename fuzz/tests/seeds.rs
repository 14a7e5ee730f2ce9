//! The committed seed corpora (`fuzz/seeds/<target>/`) are generated from
//! the crate's test vectors (`tests/data/vectors.json`) and from the rows of
//! `PROVIDERS`. This test checks that the files on disk are exactly those;
//! `WRITE_SEEDS=1 cargo test --manifest-path fuzz/Cargo.toml --test seeds`
//! rewrites them (after adding a provider row, say).

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use base64::Engine as _;
use http::HeaderName;
use serde_json::Value;
use tower_webhook_fuzz::{Delivery, NOW, PROVIDERS, mac_text};

type Seeds = BTreeMap<(String, String), Vec<u8>>;

fn vectors() -> Vec<Value> {
    serde_json::from_str(include_str!("../../tests/data/vectors.json")).expect("vectors parse")
}

fn body(v: &Value) -> Vec<u8> {
    match (v["body"].as_str(), v["body_b64"].as_str()) {
        (Some(b), _) => b.as_bytes().to_vec(),
        (None, Some(b)) => base64::engine::general_purpose::STANDARD
            .decode(b)
            .expect("body_b64 decodes"),
        (None, None) => Vec::new(),
    }
}

fn headers(v: &Value) -> Vec<(String, String)> {
    v["headers"]
        .as_object()
        .map(|h| {
            h.iter()
                .map(|(k, v)| (k.to_ascii_lowercase(), v.as_str().unwrap_or("").to_owned()))
                .collect()
        })
        .unwrap_or_default()
}

/// The row (index) that verifies vector `v`, if any.
fn row(v: &Value) -> Option<u8> {
    let key = format!("{}/{}", v["provider"].as_str()?, v["scheme"].as_str()?);
    let i = PROVIDERS
        .iter()
        .position(|p| p.vectors.contains(&key.as_str()))?;
    u8::try_from(i).ok()
}

fn framed(selector: u8, rest: &[u8]) -> Vec<u8> {
    let mut out = vec![selector];
    out.extend_from_slice(rest);
    out
}

fn generate() -> Seeds {
    let mut seeds = Seeds::new();
    let mut add = |target: &str, name: String, data: Vec<u8>| {
        seeds.insert((target.to_owned(), name), data);
    };
    let vectors = vectors();

    // signature_header: each vector's signature header; each row's own.
    for v in &vectors {
        let (Some(sel), Some(id)) = (row(v), v["id"].as_str()) else {
            continue;
        };
        if let Some((_, value)) = headers(v)
            .into_iter()
            .max_by_key(|(_, val)| mac_text(val.as_bytes()).len())
        {
            add(
                "signature_header",
                id.to_owned(),
                framed(sel, value.as_bytes()),
            );
        }
    }
    for (i, p) in PROVIDERS.iter().enumerate() {
        let sel = u8::try_from(i).expect("fewer than 256 rows");
        let (signed, _) = p.deliver(p.secret, NOW, tower_webhook_fuzz::BODY);
        // Mailgun and Adyen's items sign in the body: no header to fuzz.
        let Some(name) = tower_webhook_fuzz::signature_header_name(&signed) else {
            continue;
        };
        let value = signed[&name].as_bytes();
        add(
            "signature_header",
            format!("{}-genuine", p.name),
            framed(sel, value),
        );
    }

    // timestamp: around the tolerance bounds, odd spellings, the vectors' own.
    let timed = tower_webhook_fuzz::timed();
    let texts = [
        NOW.to_string(),
        (NOW - 300).to_string(),
        (NOW - 301).to_string(),
        (NOW + 300).to_string(),
        (NOW + 301).to_string(),
        "0".into(),
        String::new(),
        format!("0{NOW}"),
        format!("{NOW} "),
        format!("+{NOW}"),
        "-1".into(),
        "999999999999999999".into(),
        "9999999999999999999".into(),
        "1614265330".into(),
    ];
    for (i, p) in timed.iter().enumerate() {
        let sel = u8::try_from(i).expect("fewer than 256 rows");
        for (k, t) in texts.iter().enumerate() {
            add(
                "timestamp",
                format!("{}-{k:02}", p.name),
                framed(sel, t.as_bytes()),
            );
        }
    }

    // secret: every distinct secret of the vectors, with the constructor its
    // form calls for; a few edge cases.
    let mut secrets: Vec<String> = vectors
        .iter()
        .filter_map(|v| v["secret"].as_str().map(str::to_owned))
        .collect();
    secrets.sort();
    secrets.dedup();
    for (k, s) in secrets.iter().enumerate() {
        let sel = if s.starts_with("whsec_") {
            2
        } else if !s.is_empty() && s.bytes().all(|b| b.is_ascii_hexdigit()) {
            3
        } else {
            1
        };
        add(
            "secret",
            format!("vector-{k:02}"),
            framed(sel, s.as_bytes()),
        );
    }
    for (k, (sel, s)) in [
        (0u8, &b"\x00\xff"[..]),
        (1, b""),
        (2, b"whsec_"),
        (2, b"whsec_AAEC"),
        (2, b" whsec_AAEC=="),
        (3, b"0aFF"),
        (3, b"abc"),
    ]
    .iter()
    .enumerate()
    {
        add("secret", format!("edge-{k:02}"), framed(*sel, s));
    }

    // verify: each vector as is (mode 0); the first two of each row signed
    // and mutated (mode 1), then with the vector's headers as noise (mode 2).
    let mut per_row = BTreeMap::<u8, usize>::new();
    for v in &vectors {
        let (Some(sel), Some(id)) = (row(v), v["id"].as_str()) else {
            continue;
        };
        let hs: Vec<(HeaderName, Vec<u8>)> = headers(v)
            .into_iter()
            .filter_map(|(k, val)| Some((HeaderName::try_from(k).ok()?, val.into_bytes())))
            .collect();
        let d = Delivery {
            provider: sel,
            mode: 0,
            at: 0,
            delta: 0,
            headers: hs.clone(),
            body: body(v),
        };
        add("verify", format!("{id}-forged"), d.encode());
        let seen = per_row.entry(sel).or_default();
        *seen += 1;
        if *seen <= 2 {
            let at = u16::try_from(*seen * 37).unwrap_or(0);
            let mutated = Delivery {
                mode: 1,
                at,
                delta: 0x20,
                headers: Vec::new(),
                ..d.clone()
            };
            add("verify", format!("{id}-mutated"), mutated.encode());
            let noisy = Delivery { mode: 2, ..d };
            add("verify", format!("{id}-noise"), noisy.encode());
        }
    }

    // payload: every distinct body, as JSON or form by its content type.
    let mut bodies = BTreeMap::<Vec<u8>, u8>::new();
    for v in &vectors {
        let form = headers(v)
            .iter()
            .any(|(k, val)| k == "content-type" && val.contains("x-www-form-urlencoded"));
        bodies.insert(body(v), if form { 2 } else { 1 });
    }
    for (k, extra) in [
        &b"{\"id\":\"evt_1\",\"id\":\"evt_2\"}"[..],
        b"{\"id\":1}",
        b"[1.5e308, -0.0, 1e-400, 18446744073709551616]",
        b"\"\\ud83d\\ude00\"",
        b"{\"a\":",
    ]
    .iter()
    .enumerate()
    {
        bodies.insert(extra.to_vec(), 0);
        let _ = k;
    }
    bodies.insert(b"payload=%7B%22a%22%3A1%7D&a=%zz&b".to_vec(), 3);
    bodies.insert(b"a=1&a=2&c=%E2%82%AC+x".to_vec(), 2);
    for (k, (b, sel)) in bodies.iter().enumerate() {
        add("payload", format!("body-{k:03}"), framed(*sel, b));
    }

    // forwarded: the shapes of the net tests.
    let forwarded: &[&str] = &[
        "10.0.0.0/8\n10.9.9.9\n198.51.100.1\nx-forwarded-for: 6.6.6.6, 203.0.113.5, 172.16.0.1",
        "10.0.0.0/8, 172.16.0.1\n10.9.9.9\n172.16.0.1\nx-forwarded-for: 6.6.6.6\nx-forwarded-for: 203.0.113.5",
        "10.0.0.0/8\n10.0.0.2\n2001:db8::7\nforwarded: for=192.0.2.60;proto=https, for=\"[2001:db8::1]:4711\"\nx-forwarded-for: 6.6.6.6",
        "10.0.0.0/8\n10.0.0.2\n10.1.1.1\nx-forwarded-for: 203.0.113.5, unknown, 10.0.0.3",
        "127.0.0.0/8\n::ffff:127.0.0.1\n::ffff:192.0.2.1\nforwarded: for=unknown",
        "10.0.0.0/33, 10.0.0.1\n10.0.0.1\n10.0.0.1\nforwarded: for=_hidden, for=\"[::1]\"",
        "::/0, 0.0.0.0/0\n2001:db8::1\n198.51.100.7\nx-forwarded-for: 1.2.3.4:80, [2001:db8::2]:443",
        "\n192.0.2.1\n\nx-forwarded-for: 1.1.1.1",
    ];
    for (k, f) in forwarded.iter().enumerate() {
        add("forwarded", format!("net-{k:02}"), f.as_bytes().to_vec());
    }
    seeds
}

#[test]
fn committed_seeds_are_the_generated_ones() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("seeds");
    let seeds = generate();
    if std::env::var_os("WRITE_SEEDS").is_some() {
        let _ = fs::remove_dir_all(&root);
        for ((target, name), data) in &seeds {
            let dir = root.join(target);
            fs::create_dir_all(&dir).expect("seed dir");
            fs::write(dir.join(name), data).expect("seed written");
        }
    }
    let mut on_disk = Seeds::new();
    for target in fs::read_dir(&root).expect("fuzz/seeds exists").flatten() {
        for file in fs::read_dir(target.path()).expect("target dir").flatten() {
            on_disk.insert(
                (
                    target.file_name().to_string_lossy().into_owned(),
                    file.file_name().to_string_lossy().into_owned(),
                ),
                fs::read(file.path()).expect("seed readable"),
            );
        }
    }
    let stale: Vec<_> = on_disk
        .keys()
        .filter(|k| seeds.get(*k) != on_disk.get(*k))
        .chain(seeds.keys().filter(|k| !on_disk.contains_key(*k)))
        .collect();
    assert!(
        stale.is_empty(),
        "seeds differ from the generated ones (rerun with WRITE_SEEDS=1): {stale:?}"
    );
}
