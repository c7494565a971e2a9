//! hyper 0.14 HTTP/1.1 hello-world server on Tokio (the idiomatic one).

#[path = "../common.rs"]
mod common;

use std::convert::Infallible;

use hyper::service::{make_service_fn, service_fn};
use hyper::{Body, Request, Response, Server};

async fn hello(_: Request<Body>) -> Result<Response<Body>, Infallible> {
    Ok(Response::builder()
        .header("Content-Type", "text/plain")
        .body(Body::from("Hello world!"))
        .unwrap())
}

fn main() {
    let (port, threads) = common::parse_args();
    let rt = common::runtime(threads);
    rt.block_on(async move {
        let addr = ([127, 0, 0, 1], port).into();
        let make = make_service_fn(|_| async { Ok::<_, Infallible>(service_fn(hello)) });
        let server = Server::bind(&addr).tcp_nodelay(true).http1_only(true).serve(make);
        if let Err(e) = server.await {
            eprintln!("hyper_http: {e}");
            std::process::exit(1);
        }
    });
}
