#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| vgpu_fuzz::recovery_log::run(data));
