//! Randomized property tests (seeded `fastrand`) for the cookie code.

use std::time::{Duration, SystemTime};

use http::{HeaderMap, HeaderValue, Method, StatusCode};
use switchyard_config::{CookieConfig, CookieMode};

use super::*;
use crate::backend::balance::testutil::servers_with;

fn random_header(rng: &mut fastrand::Rng) -> Vec<u8> {
    const ALPHABET: &[u8] = b"ab=;, \t\"\\$|~SRVNAME12";
    let len = rng.usize(0..40);
    (0..len)
        .map(|_| ALPHABET[rng.usize(0..ALPHABET.len())])
        .collect()
}

#[test]
fn parser_is_total_and_offsets_are_consistent() {
    let mut rng = fastrand::Rng::with_seed(1);
    for _ in 0..20_000 {
        let v = random_header(&mut rng);
        let mut last_end = 0;
        let mut count = 0;
        for p in parse_cookie_header(&v) {
            count += 1;
            assert!(count <= v.len() + 1, "parser does not advance on {v:?}");
            assert!(p.start <= p.end && p.end <= v.len(), "{v:?} {p:?}");
            assert!(p.start >= last_end, "{v:?}");
            last_end = p.end;
            assert!(!p.name.iter().any(|c| b"=;,".contains(c)), "{v:?} {p:?}");
            assert!(!p.name.first().is_some_and(|c| is_sp(*c)), "{v:?} {p:?}");
            if p.has_equal {
                assert!(p.value_start >= p.start && p.value_start <= p.end);
            } else {
                assert!(p.value.is_empty());
            }
        }
    }
}

#[test]
fn indirect_strip_removes_only_our_cookie() {
    let mut rng = fastrand::Rng::with_seed(2);
    let cfg = CookieConfig {
        name: "SRVNAME".into(),
        mode: CookieMode::Insert,
        indirect: true,
        ..CookieConfig::default()
    };
    let names = ["a", "SRVNAME", "b", "SRVNAMEX", "$Path"];
    for _ in 0..5_000 {
        let n = rng.usize(1..6);
        let pairs: Vec<(&str, String)> = (0..n)
            .map(|_| (names[rng.usize(0..names.len())], rng.u16(..).to_string()))
            .collect();
        let seps = ["; ", ";", ", ", " ; "];
        let mut text = String::new();
        for (i, (k, v)) in pairs.iter().enumerate() {
            if i > 0 {
                text.push_str(seps[rng.usize(0..seps.len())]);
            }
            text.push_str(&format!("{k}={v}"));
        }
        let mut h = HeaderMap::new();
        h.insert(COOKIE, HeaderValue::from_str(&text).unwrap());
        prepare_request(&cfg, &mut h);
        let after: Vec<(Vec<u8>, Vec<u8>)> = h
            .get_all(COOKIE)
            .iter()
            .flat_map(|v| {
                parse_cookie_header(v.as_bytes())
                    .filter(|p| p.has_equal)
                    .map(|p| (p.name.to_vec(), p.value.to_vec()))
                    .collect::<Vec<_>>()
            })
            .collect();
        // Expected: every pair except ours and the `$` attributes right after
        // ours; nothing at all when only `$` attributes would remain.
        let mut want = Vec::new();
        let mut deleting = false;
        for (k, v) in &pairs {
            if *k == "SRVNAME" || (deleting && k.starts_with('$')) {
                deleting = true;
                continue;
            }
            deleting = false;
            want.push((k.as_bytes().to_vec(), v.as_bytes().to_vec()));
        }
        let any_deleted = pairs.iter().any(|(k, _)| *k == "SRVNAME");
        if any_deleted && want.iter().all(|(k, _)| k.starts_with(b"$")) {
            want.clear();
        }
        assert_eq!(after, want, "{text}");
    }
}

#[test]
fn inserted_cookie_is_recognised_until_it_expires() {
    let mut rng = fastrand::Rng::with_seed(3);
    for _ in 0..2_000 {
        let n = rng.usize(1..5);
        let s = servers_with(&vec![1; n], |i, c| {
            c.cookie = Some(format!("s{i}x{}", rng.u16(..)))
        });
        let maxidle = rng.bool().then(|| rng.u32(10..100_000));
        let maxlife = rng.bool().then(|| rng.u32(10..100_000));
        let cfg = CookieConfig {
            name: "SID".into(),
            mode: CookieMode::Insert,
            maxidle,
            maxlife,
            ..CookieConfig::default()
        };
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(rng.u64(1_000_000..1_800_000_000));
        let i = rng.usize(0..n);
        let mut resp = HeaderMap::new();
        let f = apply_response(
            &cfg,
            RequestCookie::None,
            &Method::GET,
            &HeaderMap::new(),
            &s[i],
            StatusCode::OK,
            &mut resp,
            t0,
        );
        assert_eq!(f, ResponseCookie::Inserted);
        let set = resp.get(SET_COOKIE).unwrap().to_str().unwrap();
        let pair = set.split(';').next().unwrap().to_string();
        let mut req = HeaderMap::new();
        req.insert(
            COOKIE,
            HeaderValue::from_str(&format!("x=1; {pair}")).unwrap(),
        );
        let limit = [maxidle, maxlife].into_iter().flatten().min();
        let dt = rng.u64(0..200_000);
        let verdict = lookup(&cfg, &req, &s, t0 + Duration::from_secs(dt));
        match limit {
            Some(l) if dt > u64::from(l) + 4 => assert!(
                matches!(verdict, RequestCookie::Expired | RequestCookie::Old),
                "{set} after {dt}s: {verdict:?}"
            ),
            Some(l) if dt + 4 < u64::from(l) => {
                assert_eq!(verdict, RequestCookie::Valid(i), "{set}")
            }
            Some(_) => {}
            None => assert_eq!(verdict, RequestCookie::Valid(i), "{set}"),
        }
    }
}

#[test]
fn random_headers_never_panic_in_any_mode() {
    let mut rng = fastrand::Rng::with_seed(4);
    let s = servers_with(&[1, 1], |i, c| c.cookie = Some(format!("S{}", i + 1)));
    const BYTES: &[u8] = b"SRVNAME=S1~|;, \t\"\\$abc\x80";
    for _ in 0..20_000 {
        let mode = [
            CookieMode::Insert,
            CookieMode::Rewrite,
            CookieMode::Prefix,
            CookieMode::Passive,
        ][rng.usize(0..4)];
        let cfg = CookieConfig {
            name: "SRVNAME".into(),
            mode,
            indirect: rng.bool(),
            preserve: rng.bool(),
            maxidle: rng.bool().then_some(30),
            maxlife: rng.bool().then_some(60),
            ..CookieConfig::default()
        };
        let mut req = HeaderMap::new();
        let mut resp = HeaderMap::new();
        for _ in 0..rng.usize(0..3) {
            let v: Vec<u8> = (0..rng.usize(0..30))
                .map(|_| BYTES[rng.usize(0..BYTES.len())])
                .collect();
            if let Ok(v) = HeaderValue::from_bytes(&v) {
                req.append(COOKIE, v.clone());
                resp.append(SET_COOKIE, v);
            }
        }
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_000_000);
        let verdict = lookup(&cfg, &req, &s, now);
        let original = req.clone();
        prepare_request(&cfg, &mut req);
        // Without indirect or prefix only blanks around '=' may change.
        if !(cfg.indirect || mode == CookieMode::Prefix) {
            let squeeze = |h: &HeaderMap| -> Vec<u8> {
                h.get_all(COOKIE)
                    .iter()
                    .flat_map(|v| v.as_bytes().iter().copied().filter(|c| !is_sp(*c)))
                    .collect()
            };
            assert_eq!(squeeze(&req), squeeze(&original));
        }
        apply_response(
            &cfg,
            verdict,
            &Method::GET,
            &original,
            &s[rng.usize(0..2)],
            StatusCode::OK,
            &mut resp,
            now,
        );
    }
}
