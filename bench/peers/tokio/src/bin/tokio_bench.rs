//! Tokio side of Edo's benchmark suite (see bench/README.md for the exact
//! definition of each workload; every implementation does the same work).
//!
//! usage: tokio_bench <workload> <threads>
//!   threads 0 = current-thread runtime, N = multi-thread runtime, N workers.
//! Prints `bench=<name> impl=tokio threads=<n> value=<v> unit=<u>` lines and
//! exits 77 for a workload it does not know.

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use tokio::runtime::Runtime;
use tokio::sync::{mpsc, oneshot, Notify, RwLock, Semaphore};
use tokio::task::{yield_now, JoinHandle};

const SPAWN_MANY: usize = 1_000_000;
const REMOTE_ROUNDS: usize = 20;
const REMOTE_PER_THREAD: usize = 12_800;
const YIELD_TASKS: usize = 1_000;
const YIELDS: usize = 1_000;
const PING_PONG_ITERS: usize = 100;
const PING_PONG_PAIRS: usize = 1_000;
const CHAIN_DEPTH: usize = 1_000;
const CHAIN_ITERS: usize = 100;
const MPSC_MSGS: u64 = 10_000_000;
const MPSC_CAP: usize = 1_024;
const MPSC_PRODUCERS: u64 = 8;
const REQ_REPLY: usize = 1_000_000;
const SYNC_ITERS: usize = 100_000;
const NOTIFY_WAITERS: usize = 10;
const NOTIFY_TARGET: usize = 100_000;
const TIMERS: usize = 1_000_000;
const TIMEOUTS: usize = 1_000_000;
const IDLE_TASKS: usize = 1_000_000;
const FS_ROUNDS: usize = 10;
const FS_READS: usize = 1_000;
const FS_BLOCK: usize = 4096;
const SIG_ITERS: usize = 10_000;
const SIG_LISTENERS: usize = 10;

fn runtime(threads: usize) -> Runtime {
    let mut b = if threads == 0 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut b = tokio::runtime::Builder::new_multi_thread();
        b.worker_threads(threads);
        b
    };
    b.enable_time().build().expect("runtime")
}

/// The signal workload needs the I/O driver (Tokio's signal driver sits on
/// it); Edo's runtime always has its drivers.
fn runtime_all(threads: usize) -> Runtime {
    let mut b = if threads == 0 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut b = tokio::runtime::Builder::new_multi_thread();
        b.worker_threads(threads);
        b
    };
    b.enable_all().build().expect("runtime")
}

fn report(name: &str, threads: usize, value: f64, unit: &str) {
    println!("bench={name} impl=tokio threads={threads} value={value:.2} unit={unit}");
}

/// Runs `f` as a spawned task (so its spawns come "from inside a task") and
/// returns what it returns.
fn in_task<F, T>(rt: &Runtime, f: F) -> T
where
    F: Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    rt.block_on(async move { tokio::spawn(f).await.expect("task") })
}

fn ns_per(d: Duration, n: usize) -> f64 {
    d.as_nanos() as f64 / n as f64
}

fn spawn_many(rt: &Runtime) -> f64 {
    let d = in_task(rt, async {
        let t = Instant::now();
        let mut hs = Vec::with_capacity(SPAWN_MANY);
        for _ in 0..SPAWN_MANY {
            hs.push(tokio::spawn(async {}));
        }
        for h in hs {
            h.await.unwrap();
        }
        t.elapsed()
    });
    ns_per(d, SPAWN_MANY)
}

fn spawn_remote(rt: &Runtime) -> f64 {
    let mut total = Duration::ZERO;
    for _ in 0..REMOTE_ROUNDS {
        let barrier = Arc::new(Barrier::new(3));
        let mut threads = Vec::new();
        for _ in 0..2 {
            let handle = rt.handle().clone();
            let barrier = barrier.clone();
            threads.push(std::thread::spawn(move || {
                let mut hs = Vec::with_capacity(REMOTE_PER_THREAD);
                barrier.wait();
                for _ in 0..REMOTE_PER_THREAD {
                    hs.push(handle.spawn(async {}));
                }
                hs
            }));
        }
        barrier.wait();
        let t = Instant::now();
        let hs: Vec<Vec<JoinHandle<()>>> = threads.into_iter().map(|t| t.join().unwrap()).collect();
        total += t.elapsed();
        rt.block_on(async move {
            for h in hs.into_iter().flatten() {
                h.await.unwrap();
            }
        });
    }
    ns_per(total, REMOTE_ROUNDS * 2 * REMOTE_PER_THREAD)
}

fn yield_many(rt: &Runtime) -> f64 {
    let d = in_task(rt, async {
        let t = Instant::now();
        let mut hs = Vec::with_capacity(YIELD_TASKS);
        for _ in 0..YIELD_TASKS {
            hs.push(tokio::spawn(async {
                for _ in 0..YIELDS {
                    yield_now().await;
                }
            }));
        }
        for h in hs {
            h.await.unwrap();
        }
        t.elapsed()
    });
    ns_per(d, YIELD_TASKS * YIELDS)
}

fn ping_pong(rt: &Runtime) -> f64 {
    let d = in_task(rt, async {
        let t = Instant::now();
        for _ in 0..PING_PONG_ITERS {
            let mut hs = Vec::with_capacity(PING_PONG_PAIRS);
            for _ in 0..PING_PONG_PAIRS {
                hs.push(tokio::spawn(async {
                    let (tx1, rx1) = oneshot::channel::<()>();
                    let (tx2, rx2) = oneshot::channel::<()>();
                    tokio::spawn(async move {
                        rx1.await.unwrap();
                        tx2.send(()).unwrap();
                    });
                    tx1.send(()).unwrap();
                    rx2.await.unwrap();
                }));
            }
            for h in hs {
                h.await.unwrap();
            }
        }
        t.elapsed()
    });
    ns_per(d, PING_PONG_ITERS * PING_PONG_PAIRS)
}

fn chain(n: usize, done: oneshot::Sender<()>) {
    if n == 0 {
        done.send(()).unwrap();
    } else {
        tokio::spawn(async move { chain(n - 1, done) });
    }
}

fn chained_spawn(rt: &Runtime) -> f64 {
    let d = in_task(rt, async {
        let t = Instant::now();
        for _ in 0..CHAIN_ITERS {
            let (tx, rx) = oneshot::channel();
            chain(CHAIN_DEPTH, tx);
            rx.await.unwrap();
        }
        t.elapsed()
    });
    ns_per(d, CHAIN_ITERS * CHAIN_DEPTH)
}

fn mpsc_run(rt: &Runtime, producers: u64) -> f64 {
    let d = in_task(rt, async move {
        let t = Instant::now();
        let (tx, mut rx) = mpsc::channel::<u64>(MPSC_CAP);
        let per = MPSC_MSGS / producers;
        for _ in 0..producers {
            let tx = tx.clone();
            tokio::spawn(async move {
                for i in 0..per {
                    tx.send(i).await.unwrap();
                }
            });
        }
        drop(tx);
        let (mut n, mut sum) = (0u64, 0u64);
        while let Some(v) = rx.recv().await {
            sum = sum.wrapping_add(v);
            n += 1;
        }
        assert_eq!(n, MPSC_MSGS);
        assert_eq!(sum, producers * (per * (per - 1) / 2));
        t.elapsed()
    });
    MPSC_MSGS as f64 / d.as_secs_f64()
}

fn request_reply(rt: &Runtime) -> f64 {
    let d = in_task(rt, async {
        let (tx, mut rx) = mpsc::channel::<oneshot::Sender<()>>(10);
        let server = tokio::spawn(async move {
            while let Some(reply) = rx.recv().await {
                let _ = reply.send(());
            }
        });
        let t = Instant::now();
        for _ in 0..REQ_REPLY {
            let (rtx, rrx) = oneshot::channel();
            tx.send(rtx).await.unwrap();
            rrx.await.unwrap();
        }
        let d = t.elapsed();
        drop(tx);
        server.await.unwrap();
        d
    });
    ns_per(d, REQ_REPLY)
}

fn semaphore(rt: &Runtime) -> f64 {
    let d = in_task(rt, async {
        let sem = Arc::new(Semaphore::new(5));
        let t = Instant::now();
        for _ in 0..SYNC_ITERS {
            let mut hs = Vec::with_capacity(6);
            for _ in 0..6 {
                let sem = sem.clone();
                hs.push(tokio::spawn(async move {
                    let _permit = sem.acquire().await.unwrap();
                }));
            }
            for h in hs {
                h.await.unwrap();
            }
        }
        t.elapsed()
    });
    ns_per(d, SYNC_ITERS)
}

fn rwlock(rt: &Runtime) -> f64 {
    let d = in_task(rt, async {
        let lock = Arc::new(RwLock::new(()));
        let t = Instant::now();
        for _ in 0..SYNC_ITERS {
            let w = lock.write().await;
            let mut hs = Vec::with_capacity(5);
            for _ in 0..5 {
                let lock = lock.clone();
                hs.push(tokio::spawn(async move {
                    let _r = lock.read().await;
                }));
            }
            drop(w);
            for h in hs {
                h.await.unwrap();
            }
        }
        t.elapsed()
    });
    ns_per(d, SYNC_ITERS)
}

fn notify(rt: &Runtime) -> f64 {
    let d = in_task(rt, async {
        let notify = Arc::new(Notify::new());
        let count = Arc::new(AtomicUsize::new(0));
        let done = Arc::new(AtomicBool::new(false));
        let mut hs = Vec::new();
        for _ in 0..NOTIFY_WAITERS {
            let (notify, count, done) = (notify.clone(), count.clone(), done.clone());
            hs.push(tokio::spawn(async move {
                loop {
                    notify.notified().await;
                    if done.load(Ordering::Acquire) {
                        break;
                    }
                    count.fetch_add(1, Ordering::Relaxed);
                }
            }));
        }
        let t = Instant::now();
        while count.load(Ordering::Relaxed) < NOTIFY_TARGET {
            notify.notify_one();
            yield_now().await;
        }
        let d = t.elapsed();
        done.store(true, Ordering::Release);
        while hs.iter().any(|h| !h.is_finished()) {
            notify.notify_one();
            yield_now().await;
        }
        for h in hs {
            h.await.unwrap();
        }
        d
    });
    ns_per(d, NOTIFY_TARGET)
}

/// The suite's fixed pseudo-random sequence (64-bit LCG, seed 1): sleep
/// durations in 0..=1000 ms.
struct Lcg(u64);
impl Lcg {
    fn next_ms(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % 1001
    }
}

fn cpu_time() -> Duration {
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let us = |tv: libc::timeval| tv.tv_sec as u64 * 1_000_000 + tv.tv_usec as u64;
    Duration::from_micros(us(ru.ru_utime) + us(ru.ru_stime))
}

fn peak_rss_bytes() -> f64 {
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    ru.ru_maxrss as f64 * 1024.0
}

fn current_rss_bytes() -> f64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
    let pages: f64 = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    pages * unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as f64
}

fn timers(rt: &Runtime, threads: usize) {
    let cpu0 = cpu_time();
    let wall = in_task(rt, async {
        let t = Instant::now();
        let mut rng = Lcg(1);
        let mut hs = Vec::with_capacity(TIMERS);
        for _ in 0..TIMERS {
            let ms = rng.next_ms();
            hs.push(tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(ms)).await;
            }));
        }
        for h in hs {
            h.await.unwrap();
        }
        t.elapsed()
    });
    let cpu = cpu_time() - cpu0;
    report("timers", threads, ns_per(cpu, TIMERS), "ns/op");
    report("timers_wall", threads, wall.as_secs_f64() * 1e3, "ms");
    report("timers_rss", threads, peak_rss_bytes(), "bytes");
}

fn timeout_polled(rt: &Runtime, threads: usize) -> f64 {
    let tasks = threads.max(1);
    let d = in_task(rt, async move {
        let t = Instant::now();
        let mut hs = Vec::new();
        for _ in 0..tasks {
            hs.push(tokio::spawn(async move {
                for _ in 0..TIMEOUTS / tasks {
                    // Pending on its first poll, ready on its second: the
                    // timeout's timer really gets registered.
                    tokio::time::timeout(Duration::from_secs(1), yield_now())
                        .await
                        .unwrap();
                }
            }));
        }
        for h in hs {
            h.await.unwrap();
        }
        t.elapsed()
    });
    ns_per(d, TIMEOUTS)
}

fn idle_tasks(rt: &Runtime) -> f64 {
    let base = current_rss_bytes();
    in_task(rt, async move {
        let parked = Arc::new(AtomicUsize::new(0));
        let finished = Arc::new(AtomicUsize::new(0));
        let mut senders = Vec::with_capacity(IDLE_TASKS);
        for _ in 0..IDLE_TASKS {
            let (tx, rx) = oneshot::channel::<()>();
            senders.push(tx);
            let (parked, finished) = (parked.clone(), finished.clone());
            tokio::spawn(async move {
                parked.fetch_add(1, Ordering::Relaxed);
                rx.await.unwrap();
                finished.fetch_add(1, Ordering::Relaxed);
            });
        }
        while parked.load(Ordering::Relaxed) < IDLE_TASKS {
            yield_now().await;
        }
        let per_task = (peak_rss_bytes() - base) / IDLE_TASKS as f64;
        for tx in senders {
            tx.send(()).unwrap();
        }
        while finished.load(Ordering::Relaxed) < IDLE_TASKS {
            yield_now().await;
        }
        per_task
    })
}

/// fs.rs async_read_buf, repeated: 10 x (open /dev/zero, 1,000 reads of 4 KiB).
fn fs_read(rt: &Runtime) -> f64 {
    use tokio::io::AsyncReadExt;
    let d = in_task(rt, async {
        let t = Instant::now();
        let mut buf = [0u8; FS_BLOCK];
        for _ in 0..FS_ROUNDS {
            let mut f = tokio::fs::File::open("/dev/zero").await.expect("open /dev/zero");
            for _ in 0..FS_READS {
                let n = f.read(&mut buf).await.expect("read");
                assert!(n > 0);
            }
        }
        t.elapsed()
    });
    ns_per(d, FS_ROUNDS * FS_READS)
}

/// signal.rs many_signals, repeated, with SIGUSR1 and SIGUSR2: 10 listeners
/// per signal forward each delivery into an mpsc(10); 10,000 x (kill SIGUSR1,
/// receive 10, kill SIGUSR2, receive 10).
fn signal_latency(rt: &Runtime) -> f64 {
    use tokio::signal::unix::{signal, SignalKind};
    let d = in_task(rt, async {
        let ready = Arc::new(AtomicUsize::new(0));
        let kinds = [SignalKind::user_defined1(), SignalKind::user_defined2()];
        let nums = [libc::SIGUSR1, libc::SIGUSR2];
        let mut rxs = Vec::new();
        let mut hs = Vec::new();
        for kind in kinds {
            let (tx, rx) = mpsc::channel::<()>(SIG_LISTENERS);
            for _ in 0..SIG_LISTENERS {
                let (tx, ready) = (tx.clone(), ready.clone());
                hs.push(tokio::spawn(async move {
                    let mut s = signal(kind).expect("signal");
                    ready.fetch_add(1, Ordering::SeqCst);
                    for _ in 0..SIG_ITERS {
                        s.recv().await.expect("recv signal");
                        tx.send(()).await.expect("send");
                    }
                }));
            }
            rxs.push(rx);
        }
        while ready.load(Ordering::SeqCst) < 2 * SIG_LISTENERS {
            yield_now().await;
        }
        let t = Instant::now();
        for _ in 0..SIG_ITERS {
            for s in 0..2 {
                unsafe {
                    libc::kill(libc::getpid(), nums[s]);
                }
                for _ in 0..SIG_LISTENERS {
                    rxs[s].recv().await.expect("recv");
                }
            }
        }
        let d = t.elapsed();
        for h in hs {
            h.await.unwrap();
        }
        d
    });
    ns_per(d, 2 * SIG_ITERS)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 3 {
        eprintln!("usage: {} <workload> <threads>", args[0]);
        std::process::exit(2);
    }
    let name = args[1].as_str();
    let threads: usize = args[2].parse().expect("threads");
    let rt = if name == "signal_latency" {
        runtime_all(threads)
    } else {
        runtime(threads)
    };
    let (value, unit) = match name {
        "spawn_many" => (spawn_many(&rt), "ns/op"),
        "spawn_remote" => (spawn_remote(&rt), "ns/op"),
        "yield_many" => (yield_many(&rt), "ns/op"),
        "ping_pong" => (ping_pong(&rt), "ns/op"),
        "chained_spawn" => (chained_spawn(&rt), "ns/op"),
        "mpsc_uncontended" => (mpsc_run(&rt, 1), "ops/s"),
        "mpsc_contended" => (mpsc_run(&rt, MPSC_PRODUCERS), "ops/s"),
        "request_reply" => (request_reply(&rt), "ns/op"),
        "semaphore" => (semaphore(&rt), "ns/op"),
        "rwlock" => (rwlock(&rt), "ns/op"),
        "notify" => (notify(&rt), "ns/op"),
        "timeout_polled" => (timeout_polled(&rt, threads), "ns/op"),
        "idle_tasks" => (idle_tasks(&rt), "bytes"),
        "fs_read" => (fs_read(&rt), "ns/op"),
        // Tokio's File always reads through the pool: the same work.
        "fs_read_pool" => (fs_read(&rt), "ns/op"),
        "signal_latency" => (signal_latency(&rt), "ns/op"),
        "timers" => {
            timers(&rt, threads);
            return;
        }
        _ => {
            eprintln!("tokio_bench: workload {name} not implemented");
            std::process::exit(77);
        }
    };
    report(name, threads, value, unit);
}
