//! The device nodes a DRM file is opened through, and what `fstat` says
//! of each: libdrm tells them apart by their device numbers.

use scheme_seam::Stat;

/// Which device node a DRM file was opened through.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Node {
    /// `card0`: the primary node (KMS and render ioctls).
    Primary,
    /// `renderD128`: the render node.
    Render,
}

/// The DRM character devices' major number (Linux's `DRM_MAJOR`).
pub const DRM_MAJOR: u32 = 226;

impl Node {
    /// The node's minor number, as Linux numbers the first device's nodes:
    /// libdrm tells a render node from a primary one by it.
    pub fn minor(self) -> u32 {
        match self {
            Node::Primary => 0,
            Node::Render => 128,
        }
    }

    /// What `fstat` says of the node: a character device with the
    /// permissions Debian gives them (render nodes open to everyone).
    pub fn stat(self) -> Stat {
        let permissions = match self {
            Node::Primary => 0o660,
            Node::Render => 0o666,
        };
        Stat {
            mode: Stat::CHAR_DEVICE | permissions,
            rdev: Stat::device_number(DRM_MAJOR, self.minor()),
            size: 0,
        }
    }

    /// The node a path below the scheme root names.
    pub fn from_path(path: &str) -> Option<Node> {
        match path.trim_matches('/') {
            "card0" => Some(Node::Primary),
            "renderD128" => Some(Node::Render),
            _ => None,
        }
    }
}
