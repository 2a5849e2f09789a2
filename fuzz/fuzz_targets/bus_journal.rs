#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| vgpu_fuzz::bus_journal::run(data));
