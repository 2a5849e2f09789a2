//! EGL and GLES for the test programs, as an application would use them,
//! with the libraries loaded at run time (the runtime packages have no
//! link-time `.so` names, so nothing here needs GL development files).
//!
//! [`Context::new`] brings up a GLES context with no surface (programs
//! render into framebuffer objects) on EGL's GBM platform, from a DRM
//! render node, or on Mesa's surfaceless platform (no DRM node: Mesa's
//! vtest path); [`require_virgl`] proves the context is on virgl, since Mesa
//! falls back to llvmpipe without a word.

use std::ffi::{c_char, c_int, c_uint, c_void, CStr, CString};

/// A pointer as EGL and GBM pass their objects.
pub type Ptr = *mut c_void;

/// A C library opened with `dlopen`, whose symbols are looked up by name.
pub struct Lib(*mut c_void);

impl Lib {
    /// Loads `name` (e.g. `libEGL.so.1`); the library stays loaded for the
    /// life of the process.
    pub fn open(name: &str) -> Result<Lib, String> {
        let c = CString::new(name).expect("no NUL");
        // SAFETY: a NUL-terminated name; the handle is kept for the process.
        let h = unsafe { libc::dlopen(c.as_ptr(), libc::RTLD_NOW | libc::RTLD_GLOBAL) };
        if h.is_null() {
            return Err(format!("cannot load {name}"));
        }
        Ok(Lib(h))
    }

    /// The function `name` as `F`, which must be a function pointer type
    /// (`unsafe extern "C" fn(...)`) matching its C prototype: calling it is
    /// only sound if it does.
    pub fn sym<F: Copy>(&self, name: &str) -> Result<F, String> {
        let c = CString::new(name).expect("no NUL");
        // SAFETY: a handle from dlopen and a NUL-terminated name.
        let p = unsafe { libc::dlsym(self.0, c.as_ptr()) };
        if p.is_null() {
            return Err(format!("no {name}"));
        }
        assert_eq!(size_of::<F>(), size_of::<*mut c_void>());
        // SAFETY: `F` is pointer-sized (checked above) and, as documented,
        // a function pointer type of the symbol's prototype.
        Ok(unsafe { std::mem::transmute_copy(&p) })
    }
}

/// Where the EGL display comes from.
#[derive(Clone, Copy, Debug)]
pub enum Platform<'a> {
    /// EGL's GBM platform on a GBM device made from this DRM node (e.g.
    /// `/dev/dri/renderD128`).
    Gbm(&'a str),
    /// Mesa's surfaceless platform with the default display: no DRM node
    /// needed (with `GALLIUM_DRIVER=virpipe`, Mesa's vtest path).
    Surfaceless,
}

const EGL_PLATFORM_GBM_KHR: c_uint = 0x31D7;
const EGL_PLATFORM_SURFACELESS_MESA: c_uint = 0x31DD;
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

/// A GLES context, current on this thread with no surface (configless and
/// surfaceless: Mesa offers both extensions). The display is terminated
/// when this is dropped.
pub struct Context {
    /// `libGLESv2.so.2`, for the GL entry points.
    pub gl: Lib,
    display: Ptr,
    terminate: unsafe extern "C" fn(Ptr) -> c_uint,
}

impl Context {
    /// Loads the libraries, initializes a display on `platform` and makes a
    /// GLES `version` (2 or 3) context current.
    pub fn new(platform: Platform<'_>, version: c_int) -> Result<Context, String> {
        let gbm = match platform {
            Platform::Gbm(_) => Some(Lib::open("libgbm.so.1")?),
            Platform::Surfaceless => None,
        };
        let egl = Lib::open("libEGL.so.1")?;
        let gl = Lib::open("libGLESv2.so.2")?;

        let (platform, native) = match (platform, gbm) {
            (Platform::Gbm(node), Some(gbm)) => (EGL_PLATFORM_GBM_KHR, gbm_device(&gbm, node)?),
            _ => (EGL_PLATFORM_SURFACELESS_MESA, std::ptr::null_mut()),
        };

        let get_display: unsafe extern "C" fn(c_uint, Ptr, *const isize) -> Ptr =
            egl.sym("eglGetPlatformDisplay")?;
        let initialize: unsafe extern "C" fn(Ptr, *mut c_int, *mut c_int) -> c_uint =
            egl.sym("eglInitialize")?;
        let bind_api: unsafe extern "C" fn(c_uint) -> c_uint = egl.sym("eglBindAPI")?;
        let create_context: unsafe extern "C" fn(Ptr, Ptr, Ptr, *const c_int) -> Ptr =
            egl.sym("eglCreateContext")?;
        let make_current: unsafe extern "C" fn(Ptr, Ptr, Ptr, Ptr) -> c_uint =
            egl.sym("eglMakeCurrent")?;
        let terminate = egl.sym("eglTerminate")?;

        // SAFETY: EGL calls with the objects EGL returned (the native
        // display is a GBM device or, surfaceless, EGL_DEFAULT_DISPLAY), as
        // the spec allows (configless and surfaceless: the driver offers
        // both extensions).
        let display = unsafe {
            let display = get_display(platform, native, std::ptr::null());
            let (mut major, mut minor) = (0, 0);
            if display.is_null() || initialize(display, &mut major, &mut minor) == 0 {
                return Err("eglInitialize failed".into());
            }
            display
        };
        let context = Context {
            gl,
            display,
            terminate,
        };
        // SAFETY: as above, on the initialized display.
        unsafe {
            if bind_api(EGL_OPENGL_ES_API) == 0 {
                return Err("eglBindAPI failed".into());
            }
            let attribs = [EGL_CONTEXT_CLIENT_VERSION, version, EGL_NONE];
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
        }
        Ok(context)
    }
}

impl Drop for Context {
    fn drop(&mut self) {
        // SAFETY: the display initialized in `new`.
        unsafe { (self.terminate)(self.display) };
    }
}

/// Opens the DRM `node` and makes a GBM device of it (both kept for the
/// process).
fn gbm_device(gbm: &Lib, node: &str) -> Result<Ptr, String> {
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
    Ok(device)
}

/// Prints `GL_RENDERER: <renderer>` and returns the renderer, or fails
/// unless it is virgl (Mesa falls back to llvmpipe or zink silently).
pub fn require_virgl(gl: &Lib) -> Result<String, String> {
    let get_string: unsafe extern "C" fn(c_uint) -> *const c_char = gl.sym("glGetString")?;
    // SAFETY: a GL call on the current context; the string it returns is
    // NUL-terminated and lives as long as the context.
    let renderer = unsafe {
        let renderer = get_string(GL_RENDERER);
        if renderer.is_null() {
            return Err("no GL_RENDERER".into());
        }
        CStr::from_ptr(renderer).to_string_lossy().into_owned()
    };
    println!("GL_RENDERER: {renderer}");
    if !renderer.contains("virgl") {
        return Err(format!("not rendering on virgl: {renderer}"));
    }
    Ok(renderer)
}

/// Makes a framebuffer object with a `width`×`height` RGBA8 renderbuffer
/// as its colour attachment and binds it (with the renderbuffer); returns
/// the framebuffer's name.
pub fn offscreen_framebuffer(gl: &Lib, width: c_int, height: c_int) -> Result<c_uint, String> {
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
    // SAFETY: GL calls on the current context with objects GL made.
    unsafe {
        let (mut fb, mut rb) = (0, 0);
        gen_framebuffers(1, &mut fb);
        bind_framebuffer(GL_FRAMEBUFFER, fb);
        gen_renderbuffers(1, &mut rb);
        bind_renderbuffer(GL_RENDERBUFFER, rb);
        renderbuffer_storage(GL_RENDERBUFFER, GL_RGBA8, width, height);
        framebuffer_renderbuffer(GL_FRAMEBUFFER, GL_COLOR_ATTACHMENT0, GL_RENDERBUFFER, rb);
        if check_status(GL_FRAMEBUFFER) != GL_FRAMEBUFFER_COMPLETE {
            return Err("framebuffer incomplete".into());
        }
        Ok(fb)
    }
}

/// Compiles and links a program of vertex shader `vs` and fragment shader
/// `fs` (GLSL ES sources), with each named attribute bound to its location
/// first; returns the program's name (not made current).
pub fn program(
    gl: &Lib,
    vs: &str,
    fs: &str,
    attributes: &[(c_uint, &CStr)],
) -> Result<c_uint, String> {
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
    // SAFETY: GL calls on the current context with objects GL made and
    // NUL-terminated strings.
    unsafe {
        let program = create_program();
        for (kind, source) in [(GL_VERTEX_SHADER, vs), (GL_FRAGMENT_SHADER, fs)] {
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
        for (location, name) in attributes {
            bind_attrib(program, *location, name.as_ptr());
        }
        link_program(program);
        let mut linked = 0;
        get_programiv(program, GL_LINK_STATUS, &mut linked);
        if linked == 0 {
            return Err("program link failed".into());
        }
        Ok(program)
    }
}
