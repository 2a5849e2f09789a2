//! The control queue under load on the real device: many commands in
//! flight, a ring that fills, completions out of order, every fence once.

mod common;

use std::collections::{HashMap, HashSet};

use common::{ctx_with_target, start_3d, start_with};
use virgl_stream::clear_stream;
use virgl_stream::format::R8G8B8A8_UNORM;
use virtio_gpu_proto::{CmdSubmit, FenceId, GetCapsetInfo, RespCapsetInfo};
use virtio_gpud::{Pending, Timeline};
use zerocopy::FromBytes;

#[test]
fn hundreds_in_flight_fill_the_ring_and_all_complete_once() {
    let mut opts = common::options(true);
    // A small ring makes the submitter hit back-pressure many times.
    opts.gpu.ctrl_queue_size = 64;
    let mut dev = start_with(&opts);
    let gpu = &mut dev.gpu;
    let (ctx, res) = ctx_with_target(gpu, 128, 128);
    let stream = clear_stream(res.id.get(), R8G8B8A8_UNORM, [0.0, 0.0, 1.0, 1.0]);
    let free_before = gpu.pool().free_bytes();
    let fence_base = gpu.fences().last_signaled(Timeline::Global);

    const N: usize = 600;
    let mut pending: Vec<Pending> = Vec::with_capacity(N);
    for i in 0..N {
        // Fenced submits, with an unfenced query after every third: the
        // device answers those at once and holds fenced ones until the
        // host work retires, so completions come back out of order.
        let p = if i % 3 == 2 {
            gpu.submit(&GetCapsetInfo::new(0), &[], None).unwrap()
        } else {
            let submit = CmdSubmit::new(ctx, stream.len() as u32);
            gpu.submit(&submit, &stream, Some(Timeline::Global))
                .unwrap()
        };
        pending.push(p);
    }
    gpu.flush().unwrap();
    let stats = gpu.stats();
    assert!(
        stats.ring_full_waits > 0,
        "the ring never filled: {stats:?}"
    );

    // Collect in submission order; `wait` stashes whatever else arrives.
    let mut seen = HashSet::new();
    let mut fences = Vec::new();
    for p in &pending {
        let c = gpu.wait(*p).expect("every command completes");
        assert_eq!(c.id, p.id);
        assert!(seen.insert(c.id), "{:?} completed twice", c.id);
        let bytes = c.result.expect("no device error");
        match c.fence {
            Some((Timeline::Global, f)) => {
                assert_eq!(Some(f), p.fence);
                fences.push(f);
            }
            Some(other) => panic!("unexpected timeline {other:?}"),
            None => {
                let (info, _) = RespCapsetInfo::read_from_prefix(&bytes).unwrap();
                assert!(info.capset_max_size.get() > 0);
            }
        }
    }
    assert!(matches!(
        gpu.wait(pending[0]),
        Err(virtio_gpud::Error::UnknownRequest)
    ));
    // Fence ids were handed out in queue order, each exactly once.
    let expected: Vec<FenceId> = (1..=fences.len() as u64)
        .map(|i| FenceId::new(fence_base.get() + i))
        .collect();
    assert_eq!(fences, expected);
    assert_eq!(
        gpu.fences().last_signaled(Timeline::Global),
        *expected.last().unwrap()
    );
    // Progress is reported per batch: the last report names the newest
    // fence, and nothing is left to report afterwards.
    let progress = gpu.take_fence_progress();
    assert_eq!(
        progress.last(),
        Some(&(Timeline::Global, *expected.last().unwrap()))
    );
    assert!(gpu.take_fence_progress().is_empty());
    assert_eq!(gpu.in_flight(), 0);
    let stats = gpu.stats();
    assert_eq!(stats.ctrl.submitted, stats.ctrl.completed);
    assert_eq!(stats.ctrl.device_errors, 0);
    assert_eq!(stats.ctrl.bogus_used, 0);
    assert_eq!(
        gpu.pool().free_bytes(),
        free_before,
        "every command buffer returned"
    );
}

#[test]
fn unfenced_commands_overtake_fenced_ones() {
    let mut dev = start_3d();
    let gpu = &mut dev.gpu;
    let (ctx, res) = ctx_with_target(gpu, 256, 256);
    let stream = clear_stream(res.id.get(), R8G8B8A8_UNORM, [1.0, 1.0, 0.0, 1.0]);

    let mut order = Vec::new();
    let mut pending = HashMap::new();
    let notifies_before = gpu.stats().ctrl.notifies;
    for _ in 0..8 {
        let submit = CmdSubmit::new(ctx, stream.len() as u32);
        let fenced = gpu
            .submit(&submit, &stream, Some(Timeline::Global))
            .unwrap();
        let plain = gpu.submit(&GetCapsetInfo::new(0), &[], None).unwrap();
        pending.insert(fenced.id, fenced);
        pending.insert(plain.id, plain);
    }
    gpu.flush().unwrap();
    assert_eq!(
        gpu.stats().ctrl.notifies,
        notifies_before + 1,
        "one notification for the batch of 16"
    );
    while !pending.is_empty() {
        assert!(gpu.wait_any().unwrap() > 0);
        pending.retain(|_, p| match gpu.take_completion(p) {
            Some(c) => {
                order.push((c.id, c.fence.is_some()));
                false
            }
            None => true,
        });
    }
    // The host answers unfenced commands on decode and fenced ones when the
    // work retires, so some unfenced command finished before a fenced
    // command submitted ahead of it.
    let overtaken = order
        .iter()
        .enumerate()
        .any(|(i, &(id, fenced))| !fenced && order[i..].iter().any(|&(o, f)| f && o < id));
    assert!(overtaken, "completion order {order:?}");
}
