//! Shared by the Tokio server peers: argv (`--port N --threads N`, threads 0 =
//! current-thread runtime) and the runtime they run on.

use tokio::runtime::Runtime;

pub fn parse_args() -> (u16, usize) {
    let args: Vec<String> = std::env::args().collect();
    let (mut port, mut threads) = (None, None);
    let mut i = 1;
    while i + 1 < args.len() {
        match args[i].as_str() {
            "--port" => port = args[i + 1].parse().ok(),
            "--threads" => threads = args[i + 1].parse().ok(),
            _ => break,
        }
        i += 2;
    }
    match (port, threads) {
        (Some(p), Some(t)) if i == args.len() => (p, t),
        _ => {
            eprintln!("usage: {} --port N --threads N", args[0]);
            std::process::exit(2);
        }
    }
}

pub fn runtime(threads: usize) -> Runtime {
    let mut b = if threads == 0 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut b = tokio::runtime::Builder::new_multi_thread();
        b.worker_threads(threads);
        b
    };
    b.enable_all().build().expect("runtime")
}
