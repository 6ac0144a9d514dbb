//! Plain threads + crossbeam-channel: every "actor" is an OS thread owning the receiving end
//! of a channel (unbounded for tells, `bounded(bound)` for fan-in, `bounded(1)` pairs for
//! request/response), the floor that an actor runtime adds its costs to.
//!
//! Cores: pairs are pinned like coreactor's shards (ping-pong, counting and actor-to-actor ask:
//! one thread on CPU 0, the other on CPU 1; outside ask: responder on CPU 0). The thread ring
//! (100 threads) and fork-join (60 threads) are left to the OS scheduler, since pinning 100
//! threads to 2 CPUs would only add an arbitrary choice. Fork-join creation is not run:
//! one OS thread per actor would measure thread creation, not an actor runtime.

use crate::common::{new_hist, record, spawn_pinned, work_item};
use crate::workload::{AskSession, Peer, Session, signal, timed, wait, wait_n};
use crossbeam_channel::{Receiver, Sender, bounded, unbounded};
use hdrhistogram::Histogram;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The plain-threads peer.
pub struct Threads;

/// Message of the counting pair.
enum Count {
    Incr,
    Fence,
}

struct CountingSession {
    run_tx: Option<Sender<u64>>,
    done_rx: Receiver<u64>,
    threads: Vec<JoinHandle<()>>,
}

impl Session for CountingSession {
    fn run(&mut self, k: u64) {
        self.run_tx
            .as_ref()
            .expect("session open")
            .send(k)
            .expect("producer alive");
        let seen = wait(&self.done_rx, "threads counting");
        assert_eq!(seen, k, "threads counting: counter saw a wrong count");
    }
}

impl Drop for CountingSession {
    fn drop(&mut self) {
        // Closing the run channel ends the producer, whose exit closes the counter's channel.
        self.run_tx = None;
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

struct OutsideAsk {
    req: Option<Sender<u64>>,
    resp: Receiver<u64>,
    responder: Option<JoinHandle<()>>,
}

impl AskSession for OutsideAsk {
    fn run(&mut self, k: u64, mut hist: Option<&mut Histogram<u64>>) {
        let req = self.req.as_ref().expect("session open");
        for i in 0..k {
            let t0 = Instant::now();
            req.send(i).expect("responder alive");
            let v = wait(&self.resp, "threads outside ask");
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
        self.req = None;
        if let Some(t) = self.responder.take() {
            let _ = t.join();
        }
    }
}

/// A responder thread pinned to `cpu`: answers each request on `resp` until `req` closes.
fn responder(cpu: usize, req: Receiver<u64>, resp: Sender<u64>) -> JoinHandle<()> {
    spawn_pinned("threads-responder", cpu, move || {
        while let Ok(x) = req.recv() {
            if resp.send(x).is_err() {
                return;
            }
        }
    })
}

fn named(name: String, f: impl FnOnce() + Send + 'static) -> JoinHandle<()> {
    std::thread::Builder::new()
        .name(name)
        .spawn(f)
        .expect("spawn a bench thread")
}

impl Peer for Threads {
    fn name(&self) -> &'static str {
        "threads+crossbeam"
    }

    fn ping_pong(&self, n: u64) -> Duration {
        let (ping_tx, ping_rx) = unbounded::<()>();
        let (pong_tx, pong_rx) = unbounded::<()>();
        let (start_tx, start_rx) = bounded::<u64>(1);
        let (done_tx, done_rx) = unbounded();
        let ponger = spawn_pinned("threads-ponger", 1, move || {
            while ping_rx.recv().is_ok() {
                if pong_tx.send(()).is_err() {
                    return;
                }
            }
        });
        let pinger = spawn_pinned("threads-pinger", 0, move || {
            let Ok(n) = start_rx.recv() else { return };
            for _ in 0..n {
                ping_tx.send(()).expect("ponger alive");
                pong_rx.recv().expect("ponger alive");
            }
            signal(&done_tx, n);
        });
        let d = timed(&done_rx, n, "threads ping-pong", || {
            start_tx.send(n).expect("pinger alive");
        });
        pinger.join().expect("pinger");
        ponger.join().expect("ponger");
        d
    }

    fn counting(&self) -> Box<dyn Session> {
        let (run_tx, run_rx) = unbounded::<u64>();
        let (tx, rx) = unbounded::<Count>();
        let (done_tx, done_rx) = unbounded();
        let counter = spawn_pinned("threads-counter", 1, move || {
            let mut seen = 0;
            while let Ok(m) = rx.recv() {
                match m {
                    Count::Incr => seen += 1,
                    Count::Fence => signal(&done_tx, std::mem::take(&mut seen)),
                }
            }
        });
        let producer = spawn_pinned("threads-producer", 0, move || {
            while let Ok(k) = run_rx.recv() {
                for _ in 0..k {
                    tx.send(Count::Incr).expect("counter alive");
                }
                tx.send(Count::Fence).expect("counter alive");
            }
        });
        Box::new(CountingSession {
            run_tx: Some(run_tx),
            done_rx,
            threads: vec![producer, counter],
        })
    }

    fn fan_in(&self, per_producer: u64, bound: usize) -> Duration {
        let (tx, rx) = bounded::<()>(bound);
        let (done_tx, done_rx) = unbounded();
        let total = 2 * per_producer;
        let sink = named("threads-sink".into(), move || {
            let mut seen = 0;
            while seen < total && rx.recv().is_ok() {
                seen += 1;
            }
            signal(&done_tx, seen);
        });
        let d = timed(&done_rx, total, "threads fan-in", || {
            for p in 0..2 {
                let tx = tx.clone();
                named(format!("fan-in-{p}"), move || {
                    for _ in 0..per_producer {
                        tx.send(()).expect("sink alive");
                    }
                });
            }
        });
        sink.join().expect("sink");
        d
    }

    fn thread_ring(&self, actors: usize, hops: u64) -> Duration {
        let (txs, rxs): (Vec<_>, Vec<_>) = (0..actors).map(|_| unbounded::<u64>()).unzip();
        let (done_tx, done_rx) = unbounded();
        let nodes: Vec<_> = rxs
            .into_iter()
            .enumerate()
            .map(|(i, rx)| {
                let next = txs[(i + 1) % actors].clone();
                let done = done_tx.clone();
                named(format!("ring-{i}"), move || {
                    while let Ok(h) = rx.recv() {
                        if h == 0 {
                            signal(&done, 0);
                            return;
                        }
                        if next.send(h - 1).is_err() {
                            return;
                        }
                    }
                })
            })
            .collect();
        let d = timed(&done_rx, 0, "threads thread-ring", || {
            txs[0].send(hops).expect("ring alive");
        });
        drop(txs);
        for n in nodes {
            n.join().expect("ring thread");
        }
        d
    }

    fn fork_join(&self, actors: usize, per_actor: u64) -> Duration {
        let (done_tx, done_rx) = unbounded();
        let (txs, workers): (Vec<_>, Vec<_>) = (0..actors)
            .map(|i| {
                let (tx, rx) = unbounded::<()>();
                let done = done_tx.clone();
                let w = named(format!("fj-{i}"), move || {
                    let mut acc = 1u64;
                    let mut left = per_actor;
                    while left > 0 && rx.recv().is_ok() {
                        work_item(&mut acc);
                        left -= 1;
                    }
                    signal(&done, 1);
                });
                (tx, w)
            })
            .unzip();
        let t0 = Instant::now();
        for _ in 0..per_actor {
            for tx in &txs {
                tx.send(()).expect("worker alive");
            }
        }
        let n = wait_n(&done_rx, actors, "threads fork-join");
        let d = t0.elapsed();
        assert_eq!(n, actors as u64);
        for w in workers {
            w.join().expect("worker");
        }
        d
    }

    fn creation(&self, _actors: usize) -> Option<Duration> {
        None
    }

    fn ask_outside(&self) -> Box<dyn AskSession> {
        let (req_tx, req_rx) = bounded(1);
        let (resp_tx, resp_rx) = bounded(1);
        Box::new(OutsideAsk {
            req: Some(req_tx),
            resp: resp_rx,
            responder: Some(responder(0, req_rx, resp_tx)),
        })
    }

    fn ask_actor(&self, n: u64, warm: u64) -> Histogram<u64> {
        let (req_tx, req_rx) = bounded(1);
        let (resp_tx, resp_rx) = bounded(1);
        let resp = responder(1, req_rx, resp_tx);
        let (done_tx, done_rx) = unbounded();
        let asker = spawn_pinned("threads-asker", 0, move || {
            let mut h = new_hist();
            for i in 0..warm + n {
                let t0 = Instant::now();
                req_tx.send(i).expect("responder alive");
                let v = resp_rx.recv().expect("responder alive");
                let d = t0.elapsed();
                assert_eq!(v, i);
                if i >= warm {
                    record(&mut h, d);
                }
            }
            let _ = done_tx.send(h);
        });
        let h = wait(&done_rx, "threads actor ask");
        asker.join().expect("asker");
        resp.join().expect("responder");
        h
    }
}
