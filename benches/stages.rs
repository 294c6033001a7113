//! Cost of the per-request stages other than the MAC itself, without the network: signature
//! header parsing, delivery-id extraction, route lookup, the replay and rate-limit store, and
//! config loading at start-up and reload. Run with `cargo bench --bench stages`.

use std::hint::black_box;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use hookgate::config::{self, DeliveryId, PathMatch};
use hookgate::guard::delivery_id;
use hookgate::provider::{Key, Request, Scheme};
use hookgate::route::RouteTable;
use hookgate::store::{Limit, MemoryStore};

const NOW: i64 = 1_700_000_000;
const TOLERANCE: Duration = Duration::from_secs(300);

/// Verifies an empty body whose signatures match none of the route's keys. The time is the
/// header parsing, one MAC over a few bytes and a comparison per listed signature: the work a
/// forged request costs.
fn header_parsing(c: &mut Criterion) {
    let mut group = c.benchmark_group("parse");
    for count in [1usize, 8, 64] {
        let signatures: Vec<String> = (0..count).map(|i| format!("v1={i:064x}")).collect();
        let stripe = format!("t={NOW},{}", signatures.join(","));
        bench_header(&mut group, "stripe", "stripe-signature", &stripe, count);

        let entries: Vec<String> = (0..count)
            .map(|i| format!("v1,{}", base64_of(&[i as u8; 32])))
            .collect();
        let mut headers = http::HeaderMap::new();
        headers.insert("webhook-id", http::HeaderValue::from_static("msg_bench"));
        headers.insert("webhook-timestamp", NOW.into());
        bench_scheme(
            &mut group,
            "standard-webhooks",
            headers,
            ("webhook-signature", entries.join(" ")),
            count,
        );
    }
    bench_header(&mut group, "github", "x-hub-signature-256", "sha256=00", 1);
    group.finish();
}

fn bench_header(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    scheme: &str,
    header: &'static str,
    value: &str,
    count: usize,
) {
    bench_scheme(
        group,
        scheme,
        http::HeaderMap::new(),
        (header, value.to_string()),
        count,
    );
}

fn bench_scheme(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    name: &str,
    mut headers: http::HeaderMap,
    (header, value): (&'static str, String),
    count: usize,
) {
    let Some(scheme) = Scheme::preset(name) else {
        return;
    };
    let Ok(key) = scheme.derive_key(b"whsec_YmVuY2htYXJrLWtleS1ieXRlcw==") else {
        return;
    };
    let Ok(value) = value.parse() else {
        return;
    };
    headers.insert(header, value);
    let keys: [Key; 1] = [key];
    let request = Request {
        method: "POST",
        url: "/hooks/bench",
        headers: &headers,
        body: b"",
    };
    group.bench_function(BenchmarkId::new(name, count), |b| {
        b.iter(|| black_box(scheme.verify(black_box(&request), &keys, NOW, TOLERANCE)).is_err())
    });
}

fn base64_of(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Finds Stripe's top-level `id`: first, as Stripe sends it, and last, after every other
/// field, so that the whole body is scanned.
fn delivery_ids(c: &mut Criterion) {
    let mut group = c.benchmark_group("delivery_id");
    let headers = http::HeaderMap::new();
    for size in [1024usize, 64 * 1024] {
        for (label, id_first) in [("stripe-id-first", true), ("stripe-id-last", false)] {
            let body = json_event(size, id_first);
            group.throughput(Throughput::Bytes(size as u64));
            group.bench_with_input(BenchmarkId::new(label, size), &body, |b, body| {
                b.iter(|| {
                    delivery_id(
                        &DeliveryId::Auto,
                        &Scheme::Stripe,
                        &headers,
                        black_box(body),
                    )
                })
            });
        }
    }
    group.finish();
}

/// Builds a JSON object of `size` bytes of line items, with `id` first or last.
fn json_event(size: usize, id_first: bool) -> Vec<u8> {
    let (head, tail) = if id_first {
        (r#"{"id":"evt_bench_0001","items":["#, "]}")
    } else {
        (r#"{"items":["#, r#"],"id":"evt_bench_0001"}"#)
    };
    let mut body = head.as_bytes().to_vec();
    let item = br#"{"sku":"sku_0001","qty":1},"#;
    while body.len() + item.len() + tail.len() < size {
        body.extend_from_slice(item);
    }
    if body.last() == Some(&b',') {
        body.pop();
    }
    body.extend_from_slice(tail.as_bytes());
    body.resize(size.max(body.len()), b' ');
    body
}

fn route_lookup(c: &mut Criterion) {
    let routes = (0..32).map(|i| {
        let path = PathMatch::Exact(format!("/hooks/provider-{i}"));
        (None, path, Arc::new(i))
    });
    let table = RouteTable::new(routes);
    c.bench_function("route/find-of-32", |b| {
        b.iter(|| table.find(None, black_box("/hooks/provider-31")))
    });
}

/// Measures the in-memory store at its default size, full, so every new id also evicts the
/// oldest.
fn store(c: &mut Criterion) {
    let mut group = c.benchmark_group("store");
    let window = Duration::from_secs(600);
    let store = MemoryStore::new(100_000);
    for i in 0..100_000u64 {
        store.claim(&format!("prefill-{i}"), window);
    }
    let next = AtomicU64::new(0);
    group.bench_function("claim-new-id-full", |b| {
        b.iter(|| {
            let id = format!("evt-{}", next.fetch_add(1, Ordering::Relaxed));
            black_box(store.claim(&id, window))
        })
    });
    group.bench_function("claim-duplicate", |b| {
        b.iter(|| black_box(store.claim(black_box("prefill-99999"), window)))
    });
    let limit = Limit {
        interval: Duration::from_millis(1),
        burst: 1_000_000,
    };
    group.bench_function("rate-limit-take", |b| {
        b.iter(|| black_box(store.take(black_box("ip:127.0.0.1"), limit, false)))
    });
    group.finish();
}

/// Loads the shipped `gateway.yaml`, as start-up and every reload do.
fn config_loading(c: &mut Criterion) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("gateway.yaml");
    let Ok(text) = std::fs::read_to_string(&path) else {
        return;
    };
    c.bench_function("config/parse-gateway-yaml", |b| {
        b.iter(|| config::parse(&path, black_box(&text)).is_ok())
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(2));
    targets = header_parsing, delivery_ids, route_lookup, store, config_loading
}
criterion_main!(benches);
