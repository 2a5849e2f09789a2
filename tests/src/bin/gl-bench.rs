//! A GL-level benchmark: a GLES2 program measuring three Mesa workloads on
//! virgl, the same on Mesa's vtest path and through the stack.
//!
//! `gl-bench gbm|surfaceless [SECONDS] [NODE]`: `gbm` is EGL's GBM platform
//! on the DRM node NODE (default `/dev/dri/renderD128`: the stack, through
//! the shim); `surfaceless` is Mesa's surfaceless platform with no DRM node
//! (with `GALLIUM_DRIVER=virpipe`, the vtest path). Each workload runs for
//! about SECONDS (default 2) after one untimed round, rendering into a
//! 256x256 RGBA8 framebuffer object:
//!
//! - `clear_finish_per_s` (/s): glClear + glFinish round trips per second;
//! - `draw_fps` (fps): frames of 1,000 draws of a small triangle, a uniform
//!   (its position and colour) changed before each, then glFinish;
//! - `tex_upload_mbps` (MB/s, 1 MB = 10^6 bytes): glTexSubImage2D of a whole
//!   1024x1024 RGBA8 texture, a quad sampling it drawn, then glFinish; MB/s
//!   of texel data.
//!
//! Each figure is a stdout line `FIGURE <key> <value> <unit>` with no path
//! prefix (the caller adds `vtest.` or `mesa.`). It prints the renderer
//! first and refuses (exit 1) unless it is virgl; at the end it checks a
//! cleared pixel, an uploaded texel as drawn and glGetError (exit 1 if any
//! is wrong).

use std::ffi::{c_int, c_uint, c_void};
use std::process::ExitCode;
use std::time::Instant;

use stack_tests::gl::{self, Lib};

/// The framebuffer's size.
const FB: c_int = 256;
/// The texture's size (square, RGBA8).
const TEX: c_int = 1024;
const TEX_BYTES: usize = (TEX * TEX * 4) as usize;
/// Draws per frame in `draw_fps`.
const DRAWS: u32 = 1000;

const GL_COLOR_BUFFER_BIT: c_uint = 0x4000;
const GL_FLOAT: c_uint = 0x1406;
const GL_TRIANGLES: c_uint = 0x0004;
const GL_TRIANGLE_STRIP: c_uint = 0x0005;
const GL_RGBA: c_uint = 0x1908;
const GL_UNSIGNED_BYTE: c_uint = 0x1401;
const GL_ARRAY_BUFFER: c_uint = 0x8892;
const GL_STATIC_DRAW: c_uint = 0x88E4;
const GL_TEXTURE_2D: c_uint = 0x0DE1;
const GL_TEXTURE0: c_uint = 0x84C0;
const GL_TEXTURE_MIN_FILTER: c_uint = 0x2801;
const GL_TEXTURE_MAG_FILTER: c_uint = 0x2800;
const GL_TEXTURE_WRAP_S: c_uint = 0x2802;
const GL_TEXTURE_WRAP_T: c_uint = 0x2803;
const GL_NEAREST: c_int = 0x2600;
const GL_CLAMP_TO_EDGE: c_int = 0x812F;

/// A small triangle moved by `offset`, in `color`.
const DRAW_VS: &str = "attribute vec2 pos; uniform vec2 offset; \
    void main() { gl_Position = vec4(pos + offset, 0.0, 1.0); }";
const DRAW_FS: &str =
    "precision mediump float; uniform vec4 color; void main() { gl_FragColor = color; }";
/// A quad over the framebuffer showing the texture.
const TEX_VS: &str = "attribute vec2 pos; varying vec2 uv; \
    void main() { uv = pos * 0.5 + 0.5; gl_Position = vec4(pos, 0.0, 1.0); }";
const TEX_FS: &str = "precision mediump float; uniform sampler2D tex; varying vec2 uv; \
    void main() { gl_FragColor = texture2D(tex, uv); }";

/// The clear colour of the final check, and what it reads back as.
const CHECK_CLEAR: [f32; 4] = [0.2, 0.4, 0.6, 1.0];
const CHECK_CLEARED: [u8; 4] = [51, 102, 153, 255];
/// The texel of the final upload.
const CHECK_TEXEL: [u8; 4] = [10, 200, 30, 255];

/// Declares [`Gl`], the GL entry points used here, and its loader.
macro_rules! entry_points {
    ($($field:ident = $name:literal: fn($($arg:ty),*) $(-> $ret:ty)?;)*) => {
        /// The GL entry points the workloads call.
        struct Gl {
            $($field: unsafe extern "C" fn($($arg),*) $(-> $ret)?,)*
        }

        impl Gl {
            fn load(lib: &Lib) -> Result<Gl, String> {
                Ok(Gl { $($field: lib.sym($name)?,)* })
            }
        }
    };
}

entry_points! {
    use_program = "glUseProgram": fn(c_uint);
    viewport = "glViewport": fn(c_int, c_int, c_int, c_int);
    clear_color = "glClearColor": fn(f32, f32, f32, f32);
    clear = "glClear": fn(c_uint);
    finish = "glFinish": fn();
    get_error = "glGetError": fn() -> c_uint;
    get_uniform_location = "glGetUniformLocation": fn(c_uint, *const std::ffi::c_char) -> c_int;
    uniform2f = "glUniform2f": fn(c_int, f32, f32);
    uniform4f = "glUniform4f": fn(c_int, f32, f32, f32, f32);
    uniform1i = "glUniform1i": fn(c_int, c_int);
    gen_buffers = "glGenBuffers": fn(c_int, *mut c_uint);
    bind_buffer = "glBindBuffer": fn(c_uint, c_uint);
    buffer_data = "glBufferData": fn(c_uint, isize, *const c_void, c_uint);
    vertex_attrib_pointer = "glVertexAttribPointer":
        fn(c_uint, c_int, c_uint, u8, c_int, *const c_void);
    enable_attrib = "glEnableVertexAttribArray": fn(c_uint);
    draw_arrays = "glDrawArrays": fn(c_uint, c_int, c_int);
    gen_textures = "glGenTextures": fn(c_int, *mut c_uint);
    bind_texture = "glBindTexture": fn(c_uint, c_uint);
    active_texture = "glActiveTexture": fn(c_uint);
    tex_parameteri = "glTexParameteri": fn(c_uint, c_uint, c_int);
    tex_image_2d = "glTexImage2D":
        fn(c_uint, c_int, c_int, c_int, c_int, c_int, c_uint, c_uint, *const c_void);
    tex_sub_image_2d = "glTexSubImage2D":
        fn(c_uint, c_int, c_int, c_int, c_int, c_int, c_uint, c_uint, *const c_void);
    read_pixels = "glReadPixels":
        fn(c_int, c_int, c_int, c_int, c_uint, c_uint, *mut c_void);
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    match run(&args) {
        Ok(()) => {
            println!("gl-bench ok");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("gl-bench: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &[String]) -> Result<(), String> {
    const USAGE: &str = "usage: gl-bench gbm|surfaceless [SECONDS] [NODE]";
    let seconds: f64 = match args.get(2) {
        Some(s) => s
            .parse()
            .ok()
            .filter(|s: &f64| *s > 0.0)
            .ok_or(format!("SECONDS is not a positive number: {s}; {USAGE}"))?,
        None => 2.0,
    };
    let node = args.get(3).map_or("/dev/dri/renderD128", String::as_str);
    let platform = match args.get(1).map(String::as_str) {
        Some("gbm") => gl::Platform::Gbm(node),
        Some("surfaceless") => gl::Platform::Surfaceless,
        _ => return Err(USAGE.into()),
    };
    let context = gl::Context::new(platform, 2)?;
    gl::require_virgl(&context.gl)?;
    let gl = Gl::load(&context.gl)?;
    gl::offscreen_framebuffer(&context.gl, FB, FB)?;
    let draw_program = gl::program(&context.gl, DRAW_VS, DRAW_FS, &[(0, c"pos")])?;
    let tex_program = gl::program(&context.gl, TEX_VS, TEX_FS, &[(0, c"pos")])?;
    let bench = Bench::new(gl, draw_program, tex_program);
    println!("{seconds} s per workload, {FB}x{FB} RGBA8 framebuffer object");

    let (n, secs) = for_about(seconds, || bench.clear_finish());
    let rate = n as f64 / secs;
    println!("clear + glFinish: {n} round trips in {secs:.2} s");
    println!("FIGURE clear_finish_per_s {rate:.1} /s");

    let (n, secs) = for_about(seconds, || bench.draw_frame());
    let rate = n as f64 / secs;
    println!("{DRAWS} draws + glFinish: {n} frames in {secs:.2} s");
    println!("FIGURE draw_fps {rate:.2} fps");

    let texels = vec![0x55u8; TEX_BYTES];
    let (n, secs) = for_about(seconds, || bench.upload(&texels));
    let rate = (n as usize * TEX_BYTES) as f64 / secs / 1e6;
    println!("{TEX}x{TEX} RGBA8 upload + sampling draw + glFinish: {n} uploads in {secs:.2} s (1 MB = 10^6 bytes)");
    println!("FIGURE tex_upload_mbps {rate:.1} MB/s");

    bench.check()
}

/// Runs `round` once untimed, then again until `seconds` have passed (at
/// least once); returns the timed rounds and the seconds they took.
fn for_about(seconds: f64, mut round: impl FnMut()) -> (u64, f64) {
    round();
    let start = Instant::now();
    let mut n = 0;
    loop {
        round();
        n += 1;
        let elapsed = start.elapsed().as_secs_f64();
        if elapsed >= seconds {
            return (n, elapsed);
        }
    }
}

/// A clear colour that is not the previous one, so every clear is new work.
fn n_colour(i: u32) -> [f32; 4] {
    let f = (i % 256) as f32 / 255.0;
    [f, 1.0 - f, 0.5, 1.0]
}

/// The workloads on the current context, framebuffer bound.
struct Bench {
    gl: Gl,
    draw_program: c_uint,
    tex_program: c_uint,
    offset: c_int,
    color: c_int,
    triangle: c_uint,
    quad: c_uint,
    texture: c_uint,
    frame: std::cell::Cell<u32>,
}

impl Bench {
    /// Makes the vertex buffers and the texture (its storage allocated).
    fn new(gl: Gl, draw_program: c_uint, tex_program: c_uint) -> Bench {
        // A triangle a hundredth of the frame, near the lower-left corner.
        let triangle: [f32; 6] = [-1.0, -1.0, -0.9, -1.0, -1.0, -0.9];
        let quad: [f32; 8] = [-1.0, -1.0, 1.0, -1.0, -1.0, 1.0, 1.0, 1.0];
        // SAFETY: GL calls on the current context with objects GL made,
        // NUL-terminated names and data of the sizes given.
        unsafe {
            let buffer = |data: &[f32]| {
                let mut b = 0;
                (gl.gen_buffers)(1, &mut b);
                (gl.bind_buffer)(GL_ARRAY_BUFFER, b);
                (gl.buffer_data)(
                    GL_ARRAY_BUFFER,
                    size_of_val(data) as isize,
                    data.as_ptr().cast(),
                    GL_STATIC_DRAW,
                );
                b
            };
            let (triangle, quad) = (buffer(&triangle), buffer(&quad));
            let mut texture = 0;
            (gl.active_texture)(GL_TEXTURE0);
            (gl.gen_textures)(1, &mut texture);
            (gl.bind_texture)(GL_TEXTURE_2D, texture);
            for (name, value) in [
                (GL_TEXTURE_MIN_FILTER, GL_NEAREST),
                (GL_TEXTURE_MAG_FILTER, GL_NEAREST),
                (GL_TEXTURE_WRAP_S, GL_CLAMP_TO_EDGE),
                (GL_TEXTURE_WRAP_T, GL_CLAMP_TO_EDGE),
            ] {
                (gl.tex_parameteri)(GL_TEXTURE_2D, name, value);
            }
            (gl.tex_image_2d)(
                GL_TEXTURE_2D,
                0,
                GL_RGBA as c_int,
                TEX,
                TEX,
                0,
                GL_RGBA,
                GL_UNSIGNED_BYTE,
                std::ptr::null(),
            );
            (gl.use_program)(tex_program);
            (gl.uniform1i)((gl.get_uniform_location)(tex_program, c"tex".as_ptr()), 0);
            (gl.enable_attrib)(0);
            (gl.viewport)(0, 0, FB, FB);
            let offset = (gl.get_uniform_location)(draw_program, c"offset".as_ptr());
            let color = (gl.get_uniform_location)(draw_program, c"color".as_ptr());
            Bench {
                gl,
                draw_program,
                tex_program,
                offset,
                color,
                triangle,
                quad,
                texture,
                frame: std::cell::Cell::new(0),
            }
        }
    }

    /// One glClear + glFinish round trip.
    fn clear_finish(&self) {
        let i = self.frame.get().wrapping_add(1);
        self.frame.set(i);
        let [r, g, b, a] = n_colour(i);
        // SAFETY: GL calls on the current context.
        unsafe {
            (self.gl.clear_color)(r, g, b, a);
            (self.gl.clear)(GL_COLOR_BUFFER_BIT);
            (self.gl.finish)();
        }
    }

    /// One frame: a clear, [`DRAWS`] small triangles each with its own
    /// position and colour, glFinish.
    fn draw_frame(&self) {
        let frame = self.frame.get().wrapping_add(1);
        self.frame.set(frame);
        // SAFETY: GL calls on the current context with objects GL made; the
        // bound vertex buffer holds the 3 vertices drawn.
        unsafe {
            let gl = &self.gl;
            (gl.use_program)(self.draw_program);
            (gl.bind_buffer)(GL_ARRAY_BUFFER, self.triangle);
            (gl.vertex_attrib_pointer)(0, 2, GL_FLOAT, 0, 0, std::ptr::null());
            (gl.clear)(GL_COLOR_BUFFER_BIT);
            for i in 0..DRAWS {
                // A 40x25 grid over the frame.
                let (x, y) = ((i % 40) as f32 * 0.05, (i / 40) as f32 * 0.08);
                (gl.uniform2f)(self.offset, x, y);
                let shade = ((i + frame) % 256) as f32 / 255.0;
                (gl.uniform4f)(self.color, shade, 1.0 - shade, 0.25, 1.0);
                (gl.draw_arrays)(GL_TRIANGLES, 0, 3);
            }
            (gl.finish)();
        }
    }

    /// One upload of the whole texture from `texels`, a quad sampling it
    /// drawn over the frame, glFinish.
    fn upload(&self, texels: &[u8]) {
        assert_eq!(texels.len(), TEX_BYTES);
        // SAFETY: GL calls on the current context with objects GL made;
        // `texels` holds the whole texture and the bound vertex buffer the
        // 4 vertices drawn.
        unsafe {
            let gl = &self.gl;
            (gl.bind_texture)(GL_TEXTURE_2D, self.texture);
            (gl.tex_sub_image_2d)(
                GL_TEXTURE_2D,
                0,
                0,
                0,
                TEX,
                TEX,
                GL_RGBA,
                GL_UNSIGNED_BYTE,
                texels.as_ptr().cast(),
            );
            (gl.use_program)(self.tex_program);
            (gl.bind_buffer)(GL_ARRAY_BUFFER, self.quad);
            (gl.vertex_attrib_pointer)(0, 2, GL_FLOAT, 0, 0, std::ptr::null());
            (gl.draw_arrays)(GL_TRIANGLE_STRIP, 0, 4);
            (gl.finish)();
        }
    }

    /// The pixel at (`x`, `y`) of the framebuffer.
    fn pixel(&self, x: c_int, y: c_int) -> [u8; 4] {
        let mut p = [0u8; 4];
        // SAFETY: a GL call on the current context writing one RGBA8 pixel
        // into a buffer of 4 bytes.
        unsafe {
            (self.gl.read_pixels)(x, y, 1, 1, GL_RGBA, GL_UNSIGNED_BYTE, p.as_mut_ptr().cast());
        }
        p
    }

    /// Checks a cleared pixel, a texel of a new upload as drawn, and that
    /// GL reported no error.
    fn check(&self) -> Result<(), String> {
        let near =
            |got: [u8; 4], want: [u8; 4]| got.iter().zip(want).all(|(g, w)| g.abs_diff(w) <= 1);
        let [r, g, b, a] = CHECK_CLEAR;
        // SAFETY: GL calls on the current context.
        unsafe {
            (self.gl.clear_color)(r, g, b, a);
            (self.gl.clear)(GL_COLOR_BUFFER_BIT);
        }
        let got = self.pixel(FB / 2, FB / 2);
        if !near(got, CHECK_CLEARED) {
            return Err(format!("cleared pixel is {got:?}, want {CHECK_CLEARED:?}"));
        }
        self.upload(&CHECK_TEXEL.repeat(TEX_BYTES / 4));
        let got = self.pixel(FB / 3, FB / 5);
        if !near(got, CHECK_TEXEL) {
            return Err(format!("drawn texel is {got:?}, want {CHECK_TEXEL:?}"));
        }
        // SAFETY: a GL call on the current context.
        let error = unsafe { (self.gl.get_error)() };
        if error != 0 {
            return Err(format!("glGetError: 0x{error:04x}"));
        }
        println!("check ok: cleared pixel {CHECK_CLEARED:?}, uploaded texel {CHECK_TEXEL:?}");
        Ok(())
    }
}
