//! tokio: every "actor" is a task owning an `mpsc` receiver (unbounded for tells, `channel(bound)`
//! for fan-in, `channel(1)` + `oneshot` for asks) on a 2-worker multi-thread runtime.
//!
//! Cores: tokio cannot pin a task to a worker; its 2 workers float over the 2 CPUs and tasks
//! move between them (work stealing, LIFO slot), so "different workers" is whatever tokio
//! decides. Outside threads use `blocking_send` / `blocking_recv`.

use crate::common::{new_hist, record, work_item};
use crate::workload::{AskSession, Peer, Session, signal, timed, wait, wait_n};
use crossbeam_channel::unbounded as cb_unbounded;
use hdrhistogram::Histogram;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};

/// The tokio peer.
pub struct Tokio;

/// A 2-worker multi-thread runtime (the one every tokio-based peer uses).
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// Ends a runtime without waiting long for stuck tasks.
pub fn shutdown(rt: tokio::runtime::Runtime) {
    rt.shutdown_timeout(Duration::from_secs(5));
}

enum Count {
    Incr,
    Fence,
}

struct CountingSession {
    run_tx: Option<mpsc::UnboundedSender<u64>>,
    done_rx: crossbeam_channel::Receiver<u64>,
    rt: Option<tokio::runtime::Runtime>,
    /// The thread driving a current-thread runtime (same-worker variant).
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Session for CountingSession {
    fn run(&mut self, k: u64) {
        self.run_tx
            .as_ref()
            .expect("session open")
            .send(k)
            .expect("producer alive");
        let seen = wait(&self.done_rx, "tokio counting");
        assert_eq!(seen, k, "tokio counting: counter saw a wrong count");
    }
}

impl Drop for CountingSession {
    fn drop(&mut self) {
        // Closing the run channel ends the producer, whose end closes the counter's channel.
        drop(self.run_tx.take());
        if let Some(rt) = self.rt.take() {
            shutdown(rt);
        }
        if let Some(t) = self.thread.take() {
            t.join().expect("tokio current-thread runtime");
        }
    }
}

/// The counter task: counts `Incr`s and answers each fence with the count.
async fn counter(mut rx: mpsc::UnboundedReceiver<Count>, done_tx: crossbeam_channel::Sender<u64>) {
    let mut seen = 0;
    while let Some(m) = rx.recv().await {
        match m {
            Count::Incr => seen += 1,
            Count::Fence => signal(&done_tx, std::mem::take(&mut seen)),
        }
    }
}

/// The producer task: for each run request `k`, sends `k` increments and a fence.
async fn producer(mut run_rx: mpsc::UnboundedReceiver<u64>, tx: mpsc::UnboundedSender<Count>) {
    while let Some(k) = run_rx.recv().await {
        for _ in 0..k {
            tx.send(Count::Incr).expect("counter alive");
        }
        tx.send(Count::Fence).expect("counter alive");
    }
}

type Req = (u64, oneshot::Sender<u64>);

/// The responder task: answers each request until every sender is gone.
fn responder(rt: &tokio::runtime::Runtime) -> mpsc::Sender<Req> {
    let (tx, mut rx) = mpsc::channel::<Req>(1);
    rt.spawn(async move {
        while let Some((x, reply)) = rx.recv().await {
            let _ = reply.send(x);
        }
    });
    tx
}

struct OutsideAsk {
    tx: mpsc::Sender<Req>,
    rt: Option<tokio::runtime::Runtime>,
}

impl AskSession for OutsideAsk {
    fn run(&mut self, k: u64, mut hist: Option<&mut Histogram<u64>>) {
        for i in 0..k {
            let t0 = Instant::now();
            let (otx, orx) = oneshot::channel();
            self.tx.blocking_send((i, otx)).expect("responder alive");
            let v = orx.blocking_recv().expect("answered");
            let d = t0.elapsed();
            assert_eq!(v, i);
            if let Some(h) = hist.as_deref_mut() {
                record(h, d);
            }
        }
    }
}

impl Drop for OutsideAsk {
    fn drop(&mut self) {
        if let Some(rt) = self.rt.take() {
            shutdown(rt);
        }
    }
}

impl Peer for Tokio {
    fn name(&self) -> &'static str {
        "tokio"
    }

    fn ping_pong(&self, n: u64) -> Duration {
        let rt = runtime();
        let (ping_tx, mut ping_rx) = mpsc::unbounded_channel::<()>();
        let (pong_tx, mut pong_rx) = mpsc::unbounded_channel::<()>();
        let (start_tx, start_rx) = oneshot::channel::<u64>();
        let (done_tx, done_rx) = cb_unbounded();
        rt.spawn(async move {
            while ping_rx.recv().await.is_some() {
                if pong_tx.send(()).is_err() {
                    return;
                }
            }
        });
        rt.spawn(async move {
            let Ok(n) = start_rx.await else { return };
            for _ in 0..n {
                ping_tx.send(()).expect("ponger alive");
                pong_rx.recv().await.expect("ponger alive");
            }
            signal(&done_tx, n);
        });
        let d = timed(&done_rx, n, "tokio ping-pong", || {
            start_tx.send(n).expect("pinger alive");
        });
        shutdown(rt);
        d
    }

    fn counting(&self) -> Box<dyn Session> {
        let rt = runtime();
        let (run_tx, run_rx) = mpsc::unbounded_channel::<u64>();
        let (tx, rx) = mpsc::unbounded_channel::<Count>();
        let (done_tx, done_rx) = cb_unbounded();
        rt.spawn(counter(rx, done_tx));
        rt.spawn(producer(run_rx, tx));
        Box::new(CountingSession {
            run_tx: Some(run_tx),
            done_rx,
            rt: Some(rt),
            thread: None,
        })
    }

    fn counting_same_worker(&self) -> Option<Box<dyn Session>> {
        // A current-thread runtime runs its tasks on the thread that calls `block_on`: both
        // tasks share that one thread for the session's lifetime.
        let (run_tx, run_rx) = mpsc::unbounded_channel::<u64>();
        let (tx, rx) = mpsc::unbounded_channel::<Count>();
        let (done_tx, done_rx) = cb_unbounded();
        let thread = std::thread::Builder::new()
            .name("tokio-current-thread".into())
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("tokio runtime");
                rt.block_on(async move {
                    let counter = tokio::spawn(counter(rx, done_tx));
                    producer(run_rx, tx).await;
                    let _ = counter.await;
                });
            })
            .expect("spawn tokio thread");
        Some(Box::new(CountingSession {
            run_tx: Some(run_tx),
            done_rx,
            rt: None,
            thread: Some(thread),
        }))
    }

    fn fan_in(&self, per_producer: u64, bound: usize) -> Duration {
        let rt = runtime();
        let (tx, mut rx) = mpsc::channel::<()>(bound);
        let (done_tx, done_rx) = cb_unbounded();
        let total = 2 * per_producer;
        rt.spawn(async move {
            let mut seen = 0;
            while seen < total && rx.recv().await.is_some() {
                seen += 1;
            }
            signal(&done_tx, seen);
        });
        let mut producers = Vec::new();
        let d = timed(&done_rx, total, "tokio fan-in", || {
            for p in 0..2 {
                let tx = tx.clone();
                producers.push(
                    std::thread::Builder::new()
                        .name(format!("fan-in-{p}"))
                        .spawn(move || {
                            for _ in 0..per_producer {
                                tx.blocking_send(()).expect("sink alive");
                            }
                        })
                        .expect("spawn producer"),
                );
            }
        });
        for p in producers {
            p.join().expect("producer");
        }
        shutdown(rt);
        d
    }

    fn thread_ring(&self, actors: usize, hops: u64) -> Duration {
        let rt = runtime();
        let (txs, rxs): (Vec<_>, Vec<_>) = (0..actors)
            .map(|_| mpsc::unbounded_channel::<u64>())
            .unzip();
        let (done_tx, done_rx) = cb_unbounded();
        for (i, mut rx) in rxs.into_iter().enumerate() {
            let next = txs[(i + 1) % actors].clone();
            let done = done_tx.clone();
            rt.spawn(async move {
                while let Some(h) = rx.recv().await {
                    if h == 0 {
                        signal(&done, 0);
                        return;
                    }
                    if next.send(h - 1).is_err() {
                        return;
                    }
                }
            });
        }
        let d = timed(&done_rx, 0, "tokio thread-ring", || {
            txs[0].send(hops).expect("ring alive");
        });
        shutdown(rt);
        d
    }

    fn fork_join(&self, actors: usize, per_actor: u64) -> Duration {
        let rt = runtime();
        let (done_tx, done_rx) = cb_unbounded();
        let txs: Vec<_> = (0..actors)
            .map(|_| {
                let (tx, mut rx) = mpsc::unbounded_channel::<()>();
                let done = done_tx.clone();
                rt.spawn(async move {
                    let mut acc = 1u64;
                    let mut left = per_actor;
                    while left > 0 && rx.recv().await.is_some() {
                        work_item(&mut acc);
                        left -= 1;
                    }
                    signal(&done, 1);
                });
                tx
            })
            .collect();
        let t0 = Instant::now();
        for _ in 0..per_actor {
            for tx in &txs {
                tx.send(()).expect("worker alive");
            }
        }
        let n = wait_n(&done_rx, actors, "tokio fork-join");
        let d = t0.elapsed();
        assert_eq!(n, actors as u64);
        shutdown(rt);
        d
    }

    fn creation(&self, actors: usize) -> Option<Duration> {
        let rt = runtime();
        let (done_tx, done_rx) = cb_unbounded();
        let t0 = Instant::now();
        for _ in 0..actors {
            let (tx, mut rx) = mpsc::unbounded_channel::<()>();
            let done = done_tx.clone();
            rt.spawn(async move {
                // The task ends (the actor stops) after its first message.
                let _ = rx.recv().await;
                drop(rx);
                signal(&done, 1);
            });
            tx.send(()).expect("child alive");
        }
        let n = wait_n(&done_rx, actors, "tokio creation");
        let d = t0.elapsed();
        assert_eq!(n, actors as u64);
        shutdown(rt);
        Some(d)
    }

    fn ask_outside(&self) -> Box<dyn AskSession> {
        let rt = runtime();
        let tx = responder(&rt);
        Box::new(OutsideAsk { tx, rt: Some(rt) })
    }

    fn ask_actor(&self, n: u64, warm: u64) -> Histogram<u64> {
        let rt = runtime();
        let tx = responder(&rt);
        let (done_tx, done_rx) = cb_unbounded();
        rt.spawn(async move {
            let mut h = new_hist();
            for i in 0..warm + n {
                let t0 = Instant::now();
                let (otx, orx) = oneshot::channel();
                tx.send((i, otx)).await.expect("responder alive");
                let v = orx.await.expect("answered");
                let d = t0.elapsed();
                assert_eq!(v, i);
                if i >= warm {
                    record(&mut h, d);
                }
            }
            let _ = done_tx.send(h);
        });
        let h = wait(&done_rx, "tokio actor ask");
        shutdown(rt);
        h
    }
}
