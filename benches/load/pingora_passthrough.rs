//! Plain Pingora reverse proxy, the baseline that `benches/load.sh` measures beside nginx and
//! hookgate: one worker thread, every request passed to one upstream as it streams in, no
//! body buffering, no verification and no metrics. It shows what the Pingora framework costs
//! on its own, so the tables can split hookgate's cost into Pingora's part and its own.
//!
//! ```sh
//! cargo run --release --example pingora-passthrough -- 127.0.0.1:18088 127.0.0.1:18081
//! ```

use async_trait::async_trait;
use pingora::prelude::*;
use pingora::server::configuration::ServerConf;

struct Passthrough {
    upstream: String,
}

#[async_trait]
impl ProxyHttp for Passthrough {
    type CTX = ();

    fn new_ctx(&self) {}

    async fn upstream_peer(&self, _session: &mut Session, _ctx: &mut ()) -> Result<Box<HttpPeer>> {
        Ok(Box::new(HttpPeer::new(
            self.upstream.as_str(),
            false,
            String::new(),
        )))
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [listen, upstream] = args.as_slice() else {
        eprintln!("usage: pingora-passthrough LISTEN_ADDR UPSTREAM_ADDR");
        std::process::exit(2);
    };

    let conf = ServerConf {
        threads: 1,
        ..ServerConf::default()
    };
    let mut server = Server::new_with_opt_and_conf(None, conf);
    server.bootstrap();
    let proxy = Passthrough {
        upstream: upstream.clone(),
    };
    let mut service = http_proxy_service(&server.configuration, proxy);
    service.add_tcp(listen);
    server.add_service(service);
    server.run_forever();
}
