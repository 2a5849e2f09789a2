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

use std::ffi::{c_char, c_int, c_uint, c_void, CStr, CString};
use std::io::BufWriter;
use std::process::ExitCode;

const W: i32 = 64;
const H: i32 = 64;

/// A C library opened with `dlopen`, whose symbols are looked up by name.
struct Lib(*mut c_void);

impl Lib {
    fn open(name: &str) -> Result<Lib, String> {
        let c = CString::new(name).expect("no NUL");
        // SAFETY: a NUL-terminated name; the handle is kept for the process.
        let h = unsafe { libc::dlopen(c.as_ptr(), libc::RTLD_NOW | libc::RTLD_GLOBAL) };
        if h.is_null() {
            return Err(format!("cannot load {name}"));
        }
        Ok(Lib(h))
    }

    /// The function `name` as `F`, a function pointer type matching its C
    /// prototype.
    fn sym<F: Copy>(&self, name: &str) -> Result<F, String> {
        let c = CString::new(name).expect("no NUL");
        // SAFETY: a handle from dlopen and a NUL-terminated name.
        let p = unsafe { libc::dlsym(self.0, c.as_ptr()) };
        if p.is_null() {
            return Err(format!("no {name}"));
        }
        assert_eq!(size_of::<F>(), size_of::<*mut c_void>());
        // SAFETY: `F` is a function pointer type of the symbol's prototype
        // (the callers' declarations below follow the EGL/GLES/GBM headers).
        Ok(unsafe { std::mem::transmute_copy(&p) })
    }
}

const EGL_PLATFORM_GBM_KHR: c_uint = 0x31D7;
const EGL_OPENGL_ES_API: c_uint = 0x30A0;
const EGL_CONTEXT_CLIENT_VERSION: c_int = 0x3098;
const EGL_NONE: c_int = 0x3038;
const GL_RENDERER: c_uint = 0x1F01;
const GL_FRAMEBUFFER: c_uint = 0x8D40;
const GL_RENDERBUFFER: c_uint = 0x8D41;
const GL_RGBA8: c_uint = 0x8058;
const GL_COLOR_ATTACHMENT0: c_uint = 0x8CE0;
const GL_FRAMEBUFFER_COMPLETE: c_uint = 0x8CD5;
const GL_VERTEX_SHADER: c_uint = 0x8B31;
const GL_FRAGMENT_SHADER: c_uint = 0x8B30;
const GL_COMPILE_STATUS: c_uint = 0x8B81;
const GL_LINK_STATUS: c_uint = 0x8B82;
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

type Ptr = *mut c_void;

fn run(node: &str, png: Option<&str>) -> Result<(), String> {
    let gbm = Lib::open("libgbm.so.1")?;
    let egl = Lib::open("libEGL.so.1")?;
    let gl = Lib::open("libGLESv2.so.2")?;

    let path = CString::new(node).expect("no NUL");
    // SAFETY: a NUL-terminated path.
    let fd = unsafe { libc::open(path.as_ptr(), libc::O_RDWR | libc::O_CLOEXEC) };
    if fd < 0 {
        return Err(format!("open {node}: {}", std::io::Error::last_os_error()));
    }
    let create_device: unsafe extern "C" fn(c_int) -> Ptr = gbm.sym("gbm_create_device")?;
    // SAFETY: an open DRM fd, which the device keeps.
    let device = unsafe { create_device(fd) };
    if device.is_null() {
        return Err("gbm_create_device failed (no virtio_gpu driver?)".into());
    }

    let get_display: unsafe extern "C" fn(c_uint, Ptr, *const isize) -> Ptr =
        egl.sym("eglGetPlatformDisplay")?;
    let initialize: unsafe extern "C" fn(Ptr, *mut c_int, *mut c_int) -> c_uint =
        egl.sym("eglInitialize")?;
    let bind_api: unsafe extern "C" fn(c_uint) -> c_uint = egl.sym("eglBindAPI")?;
    let create_context: unsafe extern "C" fn(Ptr, Ptr, Ptr, *const c_int) -> Ptr =
        egl.sym("eglCreateContext")?;
    let make_current: unsafe extern "C" fn(Ptr, Ptr, Ptr, Ptr) -> c_uint =
        egl.sym("eglMakeCurrent")?;
    let terminate: unsafe extern "C" fn(Ptr) -> c_uint = egl.sym("eglTerminate")?;

    // SAFETY: EGL calls with the objects EGL returned, as the spec allows
    // (configless and surfaceless: the driver offers both extensions).
    let display = unsafe {
        let display = get_display(EGL_PLATFORM_GBM_KHR, device, std::ptr::null());
        let (mut major, mut minor) = (0, 0);
        if display.is_null() || initialize(display, &mut major, &mut minor) == 0 {
            return Err("eglInitialize failed".into());
        }
        if bind_api(EGL_OPENGL_ES_API) == 0 {
            return Err("eglBindAPI failed".into());
        }
        let attribs = [EGL_CONTEXT_CLIENT_VERSION, 2, EGL_NONE];
        let ctx = create_context(
            display,
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            attribs.as_ptr(),
        );
        if ctx.is_null() {
            return Err("eglCreateContext failed".into());
        }
        if make_current(display, std::ptr::null_mut(), std::ptr::null_mut(), ctx) == 0 {
            return Err("eglMakeCurrent failed".into());
        }
        display
    };

    let pixels = draw(&gl)?;
    // SAFETY: the display initialized above.
    unsafe { terminate(display) };
    check(&pixels)?;
    if let Some(path) = png {
        write_png(path, &pixels)?;
    }
    Ok(())
}

/// Draws the frame and returns its pixels, bottom row first (GL's order).
fn draw(gl: &Lib) -> Result<Vec<u8>, String> {
    let get_string: unsafe extern "C" fn(c_uint) -> *const c_char = gl.sym("glGetString")?;
    let gen_framebuffers: unsafe extern "C" fn(c_int, *mut c_uint) = gl.sym("glGenFramebuffers")?;
    let bind_framebuffer: unsafe extern "C" fn(c_uint, c_uint) = gl.sym("glBindFramebuffer")?;
    let gen_renderbuffers: unsafe extern "C" fn(c_int, *mut c_uint) =
        gl.sym("glGenRenderbuffers")?;
    let bind_renderbuffer: unsafe extern "C" fn(c_uint, c_uint) = gl.sym("glBindRenderbuffer")?;
    let renderbuffer_storage: unsafe extern "C" fn(c_uint, c_uint, c_int, c_int) =
        gl.sym("glRenderbufferStorage")?;
    let framebuffer_renderbuffer: unsafe extern "C" fn(c_uint, c_uint, c_uint, c_uint) =
        gl.sym("glFramebufferRenderbuffer")?;
    let check_status: unsafe extern "C" fn(c_uint) -> c_uint =
        gl.sym("glCheckFramebufferStatus")?;
    let create_shader: unsafe extern "C" fn(c_uint) -> c_uint = gl.sym("glCreateShader")?;
    let shader_source: unsafe extern "C" fn(c_uint, c_int, *const *const c_char, *const c_int) =
        gl.sym("glShaderSource")?;
    let compile_shader: unsafe extern "C" fn(c_uint) = gl.sym("glCompileShader")?;
    let get_shaderiv: unsafe extern "C" fn(c_uint, c_uint, *mut c_int) = gl.sym("glGetShaderiv")?;
    let create_program: unsafe extern "C" fn() -> c_uint = gl.sym("glCreateProgram")?;
    let attach_shader: unsafe extern "C" fn(c_uint, c_uint) = gl.sym("glAttachShader")?;
    let bind_attrib: unsafe extern "C" fn(c_uint, c_uint, *const c_char) =
        gl.sym("glBindAttribLocation")?;
    let link_program: unsafe extern "C" fn(c_uint) = gl.sym("glLinkProgram")?;
    let get_programiv: unsafe extern "C" fn(c_uint, c_uint, *mut c_int) =
        gl.sym("glGetProgramiv")?;
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

    // SAFETY: GL calls on the current context with objects GL made, and
    // buffers sized for what each call writes.
    unsafe {
        let renderer = get_string(GL_RENDERER);
        if renderer.is_null() {
            return Err("no GL_RENDERER".into());
        }
        let renderer = CStr::from_ptr(renderer).to_string_lossy().into_owned();
        println!("GL_RENDERER: {renderer}");
        if !renderer.contains("virgl") {
            return Err(format!("not rendering on virgl: {renderer}"));
        }
        let (mut fb, mut rb) = (0, 0);
        gen_framebuffers(1, &mut fb);
        bind_framebuffer(GL_FRAMEBUFFER, fb);
        gen_renderbuffers(1, &mut rb);
        bind_renderbuffer(GL_RENDERBUFFER, rb);
        renderbuffer_storage(GL_RENDERBUFFER, GL_RGBA8, W, H);
        framebuffer_renderbuffer(GL_FRAMEBUFFER, GL_COLOR_ATTACHMENT0, GL_RENDERBUFFER, rb);
        if check_status(GL_FRAMEBUFFER) != GL_FRAMEBUFFER_COMPLETE {
            return Err("framebuffer incomplete".into());
        }
        let program = create_program();
        for (kind, source) in [(GL_VERTEX_SHADER, VS), (GL_FRAGMENT_SHADER, FS)] {
            let shader = create_shader(kind);
            let src = CString::new(source).expect("no NUL");
            shader_source(shader, 1, &src.as_ptr(), std::ptr::null());
            compile_shader(shader);
            let mut ok = 0;
            get_shaderiv(shader, GL_COMPILE_STATUS, &mut ok);
            if ok == 0 {
                return Err("shader compile failed".into());
            }
            attach_shader(program, shader);
        }
        bind_attrib(program, 0, c"pos".as_ptr());
        link_program(program);
        let mut linked = 0;
        get_programiv(program, GL_LINK_STATUS, &mut linked);
        if linked == 0 {
            return Err("program link failed".into());
        }
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
