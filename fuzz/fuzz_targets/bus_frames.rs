#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| vgpu_fuzz::bus_frames::run(data));
