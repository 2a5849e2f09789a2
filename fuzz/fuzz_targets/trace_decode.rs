#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| vgpu_fuzz::trace_decode::run(data));
