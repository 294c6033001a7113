//! Verification cost per preset and body size, without the network: what the verify stage
//! adds to each request. Run with `cargo bench --bench verify`.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use hookgate::provider::sign::{sign, Message};
use hookgate::provider::{Algorithm, Encoding, HmacRule, Request, Scheme};

const NOW: i64 = 1_700_000_000;
const SIZES: &[usize] = &[1024, 16 * 1024, 64 * 1024];

fn schemes() -> Vec<(String, Scheme)> {
    let mut schemes: Vec<(String, Scheme)> =
        ["github", "stripe", "slack", "standard-webhooks", "shopify"]
            .iter()
            .filter_map(|name| Scheme::preset(name).map(|s| (name.to_string(), s)))
            .collect();
    let rule = HmacRule::new(
        Algorithm::Sha256,
        "X-Signature",
        Some("sha256="),
        Encoding::Hex,
        "{timestamp}.{body}",
        Some("X-Timestamp"),
        None,
    );
    if let Ok(rule) = rule {
        schemes.push(("hmac".to_string(), Scheme::Hmac(rule)));
    }
    schemes
}

fn verify(c: &mut Criterion) {
    let mut group = c.benchmark_group("verify");
    for (name, scheme) in schemes() {
        let Ok(key) = scheme.derive_key(b"whsec_YmVuY2htYXJrLWtleS1ieXRlcw==") else {
            continue;
        };
        for &size in SIZES {
            let body = vec![b'x'; size];
            let message = Message {
                method: "POST",
                url: "/hooks/bench",
                body: &body,
                timestamp: NOW,
                id: "msg_bench",
            };
            let Ok(signed) = sign(&scheme, &key, &message) else {
                continue;
            };
            let mut headers = http::HeaderMap::new();
            for (header, value) in &signed {
                if let (Ok(h), Ok(v)) = (
                    http::HeaderName::from_bytes(header.as_bytes()),
                    value.parse(),
                ) {
                    headers.append(h, v);
                }
            }
            let request = Request {
                method: "POST",
                url: "/hooks/bench",
                headers: &headers,
                body: &body,
            };
            let keys = [key.clone()];
            group.throughput(Throughput::Bytes(size as u64));
            group.bench_with_input(BenchmarkId::new(&name, size), &request, |b, request| {
                b.iter(|| {
                    let verified =
                        scheme.verify(black_box(request), &keys, NOW, Duration::from_secs(300));
                    assert!(verified.is_ok());
                })
            });
        }
    }
    group.finish();
}

/// HMAC-SHA256 over the same bytes with nothing around it, the floor under every HMAC row.
fn hmac_floor(c: &mut Criterion) {
    use hmac::{Hmac, Mac};

    let mut group = c.benchmark_group("verify");
    for &size in SIZES {
        let body = vec![b'x'; size];
        group.throughput(Throughput::Bytes(size as u64));
        group.bench_with_input(
            BenchmarkId::new("hmac-sha256-only", size),
            &body,
            |b, body| {
                b.iter(|| {
                    let Ok(mut mac) = Hmac::<sha2::Sha256>::new_from_slice(b"benchmark-key-bytes")
                    else {
                        return;
                    };
                    mac.update(black_box(body));
                    black_box(mac.finalize().into_bytes());
                })
            },
        );
    }
    group.finish();
}

criterion_group!(benches, verify, hmac_floor);
criterion_main!(benches);
