#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| vgpu_fuzz::syncd_calls::run(data));
