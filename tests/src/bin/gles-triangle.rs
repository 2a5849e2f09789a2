//! A GLES2 program on EGL's GBM platform, as an application would write it:
//! it opens a DRM render node, draws a triangle into an offscreen
//! framebuffer, reads the pixels back and checks them. It proves it ran on
//! virgl (Mesa falls back to llvmpipe silently otherwise) by GL_RENDERER.
//!
//! `gles-triangle [NODE] [PNG]`: NODE defaults to `/dev/dri/renderD128`;
//! with PNG the frame is written there. Prints the renderer, then
//! "triangle ok" or what was wrong (exit 1).
//!
//! The libraries are loaded at run time (the runtime packages have no
//! link-time `.so` names), so this builds without GL development files.

use std::ffi::{c_int, c_uint, c_void};
use std::io::BufWriter;
use std::process::ExitCode;

use stack_tests::gl::{self, Lib};

const W: i32 = 64;
const H: i32 = 64;

const GL_COLOR_BUFFER_BIT: c_uint = 0x4000;
const GL_FLOAT: c_uint = 0x1406;
const GL_TRIANGLES: c_uint = 0x0004;
const GL_RGBA: c_uint = 0x1908;
const GL_UNSIGNED_BYTE: c_uint = 0x1401;

const VS: &str = "attribute vec2 pos; void main() { gl_Position = vec4(pos, 0.0, 1.0); }";
const FS: &str =
    "precision mediump float; void main() { gl_FragColor = vec4(1.0, 0.5, 0.0, 1.0); }";

/// Clear colour (blue) and triangle colour (orange), as read back.
const BACKGROUND: [u8; 4] = [0, 0, 255, 255];
const TRIANGLE: [u8; 4] = [255, 128, 0, 255];

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let node = args.get(1).map_or("/dev/dri/renderD128", String::as_str);
    match run(node, args.get(2).map(String::as_str)) {
        Ok(()) => {
            println!("triangle ok");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("gles-triangle: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(node: &str, png: Option<&str>) -> Result<(), String> {
    let context = gl::Context::new(gl::Platform::Gbm(node), 2)?;
    let pixels = draw(&context.gl)?;
    drop(context);
    check(&pixels)?;
    if let Some(path) = png {
        write_png(path, &pixels)?;
    }
    Ok(())
}

/// Draws the frame and returns its pixels, bottom row first (GL's order).
fn draw(gl: &Lib) -> Result<Vec<u8>, String> {
    let use_program: unsafe extern "C" fn(c_uint) = gl.sym("glUseProgram")?;
    let viewport: unsafe extern "C" fn(c_int, c_int, c_int, c_int) = gl.sym("glViewport")?;
    let clear_color: unsafe extern "C" fn(f32, f32, f32, f32) = gl.sym("glClearColor")?;
    let clear: unsafe extern "C" fn(c_uint) = gl.sym("glClear")?;
    let vertex_attrib_pointer: unsafe extern "C" fn(
        c_uint,
        c_int,
        c_uint,
        u8,
        c_int,
        *const c_void,
    ) = gl.sym("glVertexAttribPointer")?;
    let enable_attrib: unsafe extern "C" fn(c_uint) = gl.sym("glEnableVertexAttribArray")?;
    let draw_arrays: unsafe extern "C" fn(c_uint, c_int, c_int) = gl.sym("glDrawArrays")?;
    let read_pixels: unsafe extern "C" fn(c_int, c_int, c_int, c_int, c_uint, c_uint, *mut c_void) =
        gl.sym("glReadPixels")?;

    gl::require_virgl(gl)?;
    gl::offscreen_framebuffer(gl, W, H)?;
    let program = gl::program(gl, VS, FS, &[(0, c"pos")])?;
    // SAFETY: GL calls on the current context with objects GL made, and
    // buffers sized for what each call writes.
    unsafe {
        use_program(program);
        viewport(0, 0, W, H);
        clear_color(0.0, 0.0, 1.0, 1.0);
        clear(GL_COLOR_BUFFER_BIT);
        // Lower-left half of the frame: below the diagonal.
        let vertices: [f32; 6] = [-1.0, -1.0, 1.0, -1.0, -1.0, 1.0];
        vertex_attrib_pointer(0, 2, GL_FLOAT, 0, 0, vertices.as_ptr().cast());
        enable_attrib(0);
        draw_arrays(GL_TRIANGLES, 0, 3);
        let mut pixels = vec![0u8; (W * H * 4) as usize];
        read_pixels(
            0,
            0,
            W,
            H,
            GL_RGBA,
            GL_UNSIGNED_BYTE,
            pixels.as_mut_ptr().cast(),
        );
        Ok(pixels)
    }
}

/// Every pixel clearly below the diagonal is the triangle's, every pixel
/// clearly above it the background (the diagonal itself may go either way).
fn check(pixels: &[u8]) -> Result<(), String> {
    let mut wrong = 0;
    for y in 0..H {
        for x in 0..W {
            let want = match x + y {
                s if s < W - 2 => TRIANGLE,
                s if s > W => BACKGROUND,
                _ => continue,
            };
            let at = ((y * W + x) * 4) as usize;
            let got = &pixels[at..at + 4];
            let near = got.iter().zip(want).all(|(g, w)| g.abs_diff(w) <= 2);
            if !near {
                if wrong == 0 {
                    eprintln!("pixel ({x}, {y}) is {got:?}, want {want:?}");
                }
                wrong += 1;
            }
        }
    }
    match wrong {
        0 => Ok(()),
        n => Err(format!("{n} pixels wrong")),
    }
}

fn write_png(path: &str, pixels: &[u8]) -> Result<(), String> {
    let file = std::fs::File::create(path).map_err(|e| format!("{path}: {e}"))?;
    let mut encoder = png::Encoder::new(BufWriter::new(file), W as u32, H as u32);
    encoder.set_color(png::ColorType::Rgba);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header().map_err(|e| e.to_string())?;
    // GL's rows run bottom-up; an image's top-down.
    let rows: Vec<u8> = pixels
        .chunks_exact((W * 4) as usize)
        .rev()
        .flatten()
        .copied()
        .collect();
    writer.write_image_data(&rows).map_err(|e| e.to_string())
}
