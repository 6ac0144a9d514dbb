//! Ask latency percentiles (hdrhistogram, ns), each with its baselines measured in the same run
//! (STYLE.md §17: percentiles, never averages).
//!
//! * `outside_ask`: a thread outside the runtime (pinned to CPU 1) makes closed-loop blocking
//!   `Addr::ask`s to an actor on a 1-shard runtime (shard pinned to CPU 0). Baselines:
//!   request/response over two `crossbeam_channel::bounded(1)` channels to a thread pinned to
//!   CPU 0; tokio `mpsc::channel(1)` + `oneshot` to a task of a 2-worker runtime, the outside
//!   thread using `blocking_send` / `blocking_recv`.
//! * `actor_ask_idle` / `actor_ask_busy`: an actor on shard 0 makes closed-loop `Context::ask`s
//!   to an actor on shard 1 (2-shard runtime) and times each round trip itself with `Instant`,
//!   from just before `ask` to the start of the handler of the answer. In the busy variant each
//!   shard also runs a load actor that handles an endless stream of small work items
//!   (`common::work_item`, a ~25 ns multiply-add chain, one self-sent message per item), so both
//!   shards always have a ready actor besides the asker or the responder. Baselines: two pinned
//!   threads doing request/response over crossbeam channels (busy: each thread polls with
//!   `try_recv` and runs one work item between polls); two tokio tasks on a 2-worker runtime
//!   over `mpsc` + `oneshot` (busy: plus two load tasks running work items and calling
//!   `tokio::task::consume_budget` after each, so they yield when tokio's cooperative budget of
//!   128 is spent, the analogue of the shard's `batch_budget`). One extra row repeats the busy coreactor case with `batch_budget(8)` instead
//!   of the default 16, to show how much of the busy latency is the load actor's turn length.
//!
//! Prints a markdown table and writes `target/bench-results/latency.csv`. With the `CI`
//! environment variable set it makes a smoke run (N = 2 000, 300 warm-up asks) and asserts only
//! that the numbers are sane (non-zero, ordered percentiles), never timings.

mod common;

use common::actors::{RespMsg, Responder};

use common::{Percentiles, new_hist, record, run_pinned, spawn_pinned, work_item};
use coreactor::{Actor, Addr, AskError, Context, Reply, Runtime};
use crossbeam_channel::{TryRecvError, bounded};
use hdrhistogram::Histogram;
use std::time::{Duration, Instant};

const ASK_TIMEOUT: Duration = Duration::from_secs(5);
const RUN_TIMEOUT: Duration = Duration::from_secs(600);

// ----- actors ---------------------------------------------------------------------------------

/// Makes `warm + n` closed-loop asks to `peer`, recording the last `n` round trips.
struct Asker {
    peer: Addr<Responder>,
    hist: Histogram<u64>,
    warm_left: u64,
    left: u64,
    t0: Instant,
    done: Option<Reply<Histogram<u64>>>,
}

enum AskerMsg {
    Run {
        warm: u64,
        n: u64,
        reply: Reply<Histogram<u64>>,
    },
    Answer(Result<u64, AskError>),
}

impl Asker {
    fn fire(&mut self, ctx: &mut Context<'_, Self>) {
        self.t0 = Instant::now();
        ctx.ask(
            &self.peer,
            |r| RespMsg::Req(7, r),
            ASK_TIMEOUT,
            AskerMsg::Answer,
        );
    }
}

impl Actor for Asker {
    type Msg = AskerMsg;
    fn handle(&mut self, msg: AskerMsg, ctx: &mut Context<'_, Self>) {
        match msg {
            AskerMsg::Run { warm, n, reply } => {
                self.hist = new_hist();
                self.warm_left = warm;
                self.left = n;
                self.done = Some(reply);
                self.fire(ctx);
            }
            AskerMsg::Answer(r) => {
                let d = self.t0.elapsed();
                assert_eq!(r.expect("Context::ask answered"), 7);
                if self.warm_left > 0 {
                    self.warm_left -= 1;
                } else {
                    record(&mut self.hist, d);
                    self.left -= 1;
                }
                if self.left > 0 {
                    self.fire(ctx);
                } else if let Some(done) = self.done.take() {
                    done.send(std::mem::replace(&mut self.hist, new_hist()));
                }
            }
        }
    }
}

/// Background load: an endless stream of small work items, one self-sent message each.
struct Load {
    me: Option<Addr<Load>>,
    acc: u64,
    items: u64,
    on: bool,
}

enum LoadMsg {
    Start,
    Work,
    Stop(Reply<u64>),
}

impl Actor for Load {
    type Msg = LoadMsg;
    fn started(&mut self, ctx: &mut Context<'_, Self>) {
        self.me = Some(ctx.addr());
    }
    fn handle(&mut self, msg: LoadMsg, _ctx: &mut Context<'_, Self>) {
        match msg {
            LoadMsg::Start => {
                self.on = true;
                self.items = 0;
                self.send_work();
            }
            LoadMsg::Work => {
                work_item(&mut self.acc);
                self.items += 1;
                if self.on {
                    self.send_work();
                }
            }
            LoadMsg::Stop(reply) => {
                self.on = false;
                reply.send(self.items);
            }
        }
    }
}

impl Load {
    fn send_work(&self) {
        self.me
            .as_ref()
            .expect("started")
            .try_tell(LoadMsg::Work)
            .unwrap_or_else(|e| panic!("load self-tell: {e}"));
    }
}

fn new_load() -> Load {
    Load {
        me: None,
        acc: 1,
        items: 0,
        on: false,
    }
}

// ----- outside ask ----------------------------------------------------------------------------

fn outside_ask_coreactor(n: u64, warm: u64) -> Percentiles {
    let rt = Runtime::builder().shards(1).build().expect("runtime");
    let addr = rt.spawn_on(0, Responder).expect("spawn");
    let h = run_pinned(1, move || {
        let mut h = new_hist();
        for i in 0..warm + n {
            let t0 = Instant::now();
            let v = addr
                .ask(|r| RespMsg::Req(i, r), ASK_TIMEOUT)
                .expect("outside ask");
            let d = t0.elapsed();
            assert_eq!(v, i);
            if i >= warm {
                record(&mut h, d);
            }
        }
        h
    });
    rt.shutdown().expect("shutdown");
    Percentiles::from_hist("outside_ask", "coreactor Addr::ask (1 shard)", &h)
}

/// Request/response over two `bounded(1)` channels: the asker pinned to CPU `asker_cpu`, the
/// responder to the other CPU. With `busy`, both poll with `try_recv` and run a work item
/// between polls.
fn crossbeam_req_resp(
    bench: &'static str,
    n: u64,
    warm: u64,
    busy: bool,
) -> (Percentiles, Option<(u64, u64)>) {
    let (req_tx, req_rx) = bounded::<u64>(1);
    let (resp_tx, resp_rx) = bounded::<u64>(1);
    let responder = spawn_pinned("cb-responder", 0, move || {
        let mut acc = 1u64;
        let mut items = 0u64;
        if busy {
            loop {
                match req_rx.try_recv() {
                    Ok(x) => resp_tx.send(x).expect("asker alive"),
                    Err(TryRecvError::Empty) => {
                        work_item(&mut acc);
                        items += 1;
                    }
                    Err(TryRecvError::Disconnected) => break,
                }
            }
        } else {
            while let Ok(x) = req_rx.recv() {
                resp_tx.send(x).expect("asker alive");
            }
        }
        items
    });
    let t_start = Instant::now();
    let (h, asker_items) = run_pinned(1, move || {
        let mut h = new_hist();
        let mut acc = 1u64;
        let mut items = 0u64;
        for i in 0..warm + n {
            let t0 = Instant::now();
            req_tx.send(i).expect("responder alive");
            let v = if busy {
                loop {
                    match resp_rx.try_recv() {
                        Ok(v) => break v,
                        Err(TryRecvError::Empty) => {
                            work_item(&mut acc);
                            items += 1;
                        }
                        Err(TryRecvError::Disconnected) => panic!("responder gone"),
                    }
                }
            } else {
                resp_rx.recv().expect("responder alive")
            };
            let d = t0.elapsed();
            assert_eq!(v, i);
            if i >= warm {
                record(&mut h, d);
            }
        }
        (h, items)
    });
    let elapsed = t_start.elapsed();
    let responder_items = responder.join().expect("responder thread");
    let name = if busy {
        "crossbeam 2 threads, try_recv + work item polling"
    } else {
        "crossbeam 2 threads, bounded(1) x2"
    };
    let load = busy.then(|| {
        (
            per_sec(asker_items, elapsed),
            per_sec(responder_items, elapsed),
        )
    });
    (Percentiles::from_hist(bench, name, &h), load)
}

fn tokio_rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .expect("tokio runtime")
}

type TokioReq = (u64, tokio::sync::oneshot::Sender<u64>);

fn tokio_responder(rt: &tokio::runtime::Runtime) -> tokio::sync::mpsc::Sender<TokioReq> {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<TokioReq>(1);
    rt.spawn(async move {
        while let Some((x, reply)) = rx.recv().await {
            let _ = reply.send(x);
        }
    });
    tx
}

fn outside_ask_tokio(n: u64, warm: u64) -> Percentiles {
    let rt = tokio_rt();
    let tx = tokio_responder(&rt);
    let h = run_pinned(1, move || {
        let mut h = new_hist();
        for i in 0..warm + n {
            let t0 = Instant::now();
            let (otx, orx) = tokio::sync::oneshot::channel();
            tx.blocking_send((i, otx)).expect("responder alive");
            let v = orx.blocking_recv().expect("answered");
            let d = t0.elapsed();
            assert_eq!(v, i);
            if i >= warm {
                record(&mut h, d);
            }
        }
        h
    });
    rt.shutdown_timeout(Duration::from_secs(5));
    Percentiles::from_hist(
        "outside_ask",
        "tokio mpsc(1)+oneshot, blocking_send/recv",
        &h,
    )
}

// ----- actor-to-actor ask across shards -------------------------------------------------------

fn per_sec(items: u64, d: Duration) -> u64 {
    (items as f64 / d.as_secs_f64()) as u64
}

/// `batch_budget`: `None` for the default (16), or a smaller budget to show its effect on the
/// busy latency.
fn actor_ask_coreactor(
    bench: &'static str,
    n: u64,
    warm: u64,
    busy: bool,
    batch_budget: Option<usize>,
) -> (Percentiles, Option<(u64, u64)>) {
    let mut builder = Runtime::builder().shards(2);
    if let Some(b) = batch_budget {
        builder = builder.batch_budget(b);
    }
    let rt = builder.build().expect("runtime");
    let responder = rt.spawn_on(1, Responder).expect("spawn responder");
    let asker = rt
        .spawn_on(
            0,
            Asker {
                peer: responder.clone(),
                hist: new_hist(),
                warm_left: 0,
                left: 0,
                t0: Instant::now(),
                done: None,
            },
        )
        .expect("spawn asker");
    let loads = if busy {
        let l0 = rt.spawn_on(0, new_load()).expect("spawn load 0");
        let l1 = rt.spawn_on(1, new_load()).expect("spawn load 1");
        l0.tell(LoadMsg::Start).expect("start load");
        l1.tell(LoadMsg::Start).expect("start load");
        Some((l0, l1))
    } else {
        None
    };
    let t_start = Instant::now();
    let h = asker
        .ask(|reply| AskerMsg::Run { warm, n, reply }, RUN_TIMEOUT)
        .expect("asker run");
    let elapsed = t_start.elapsed();
    let load = loads.map(|(l0, l1)| {
        let a = l0.ask(LoadMsg::Stop, ASK_TIMEOUT).expect("stop load 0");
        let b = l1.ask(LoadMsg::Stop, ASK_TIMEOUT).expect("stop load 1");
        (per_sec(a, elapsed), per_sec(b, elapsed))
    });
    rt.shutdown().expect("shutdown");
    let mut name = if busy {
        "coreactor Context::ask 0->1, load actor on each shard".to_string()
    } else {
        "coreactor Context::ask 0->1".to_string()
    };
    if let Some(b) = batch_budget {
        name.push_str(&format!(" (batch_budget {b}, not the default)"));
    }
    (Percentiles::from_hist(bench, name, &h), load)
}

fn actor_ask_tokio(
    bench: &'static str,
    n: u64,
    warm: u64,
    busy: bool,
) -> (Percentiles, Option<(u64, u64)>) {
    let rt = tokio_rt();
    let mut stops = Vec::new();
    let mut loads = Vec::new();
    if busy {
        for _ in 0..2 {
            let (stop_tx, mut stop_rx) = tokio::sync::oneshot::channel::<()>();
            stops.push(stop_tx);
            loads.push(rt.spawn(async move {
                let mut acc = 1u64;
                let mut items = 0u64;
                while let Err(tokio::sync::oneshot::error::TryRecvError::Empty) = stop_rx.try_recv()
                {
                    work_item(&mut acc);
                    items += 1;
                    tokio::task::consume_budget().await;
                }
                items
            }));
        }
    }
    let tx = tokio_responder(&rt);
    let t_start = Instant::now();
    let asker = rt.spawn(async move {
        let mut h = new_hist();
        for i in 0..warm + n {
            let t0 = Instant::now();
            let (otx, orx) = tokio::sync::oneshot::channel();
            tx.send((i, otx)).await.expect("responder alive");
            let v = orx.await.expect("answered");
            let d = t0.elapsed();
            assert_eq!(v, i);
            if i >= warm {
                record(&mut h, d);
            }
        }
        h
    });
    let h = rt.block_on(asker).expect("asker task");
    let elapsed = t_start.elapsed();
    for s in stops {
        let _ = s.send(());
    }
    let items: Vec<u64> = loads
        .into_iter()
        .map(|l| rt.block_on(l).expect("load task"))
        .collect();
    rt.shutdown_timeout(Duration::from_secs(5));
    let name = if busy {
        "tokio 2 workers, mpsc+oneshot, 2 load tasks (coop budget)"
    } else {
        "tokio 2 workers, mpsc+oneshot"
    };
    let load = busy.then(|| (per_sec(items[0], elapsed), per_sec(items[1], elapsed)));
    (Percentiles::from_hist(bench, name, &h), load)
}

/// Median cost of one work item, in ns (11 rounds of 1M items).
fn work_item_ns() -> f64 {
    let mut acc = 1u64;
    let mut rounds: Vec<f64> = (0..11)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..1_000_000 {
                work_item(&mut acc);
            }
            t.elapsed().as_nanos() as f64 / 1e6
        })
        .collect();
    rounds.sort_by(f64::total_cmp);
    rounds[rounds.len() / 2]
}

fn main() {
    let ci = common::ci();
    let (n, warm) = if ci { (2_000, 300) } else { (200_000, 20_000) };
    println!("{}", common::machine_line());
    println!(
        "background load work item: {:.1} ns alone (median of 11 x 1M)",
        work_item_ns()
    );
    println!(
        "latency: N = {n} closed-loop asks after {warm} warm-up asks per row{}",
        if ci { " (CI smoke run)" } else { "" }
    );

    let mut rows = Vec::new();
    let mut loads = Vec::new();
    rows.push(outside_ask_coreactor(n, warm));
    rows.push(crossbeam_req_resp("outside_ask", n, warm, false).0);
    rows.push(outside_ask_tokio(n, warm));

    rows.push(actor_ask_coreactor("actor_ask_idle", n, warm, false, None).0);
    rows.push(crossbeam_req_resp("actor_ask_idle", n, warm, false).0);
    rows.push(actor_ask_tokio("actor_ask_idle", n, warm, false).0);

    for (p, load) in [
        actor_ask_coreactor("actor_ask_busy", n, warm, true, None),
        crossbeam_req_resp("actor_ask_busy", n, warm, true),
        actor_ask_tokio("actor_ask_busy", n, warm, true),
        // Not a baseline: the same coreactor measurement with a smaller fairness budget, to
        // show how much of the busy latency is the load actor's turn length.
        actor_ask_coreactor("actor_ask_busy", n, warm, true, Some(8)),
    ] {
        if let Some((a, b)) = load {
            loads.push(format!(
                "{}: background work items/s: {} / {}",
                p.implementation, a, b
            ));
        }
        rows.push(p);
    }

    println!();
    print!("{}", common::markdown_table(&rows));
    println!();
    for l in &loads {
        println!("{l}");
    }
    let path = common::results_dir().join("latency.csv");
    std::fs::write(&path, common::csv(&rows)).expect("write latency.csv");
    println!("wrote {}", path.display());

    if ci {
        for r in &rows {
            r.assert_sane();
        }
        println!("CI smoke checks passed (sanity only, no timing assertions)");
    }
}
