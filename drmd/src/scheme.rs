//! `scheme:drm`: the device nodes Mesa and compositors open.
//!
//! Both nodes of the one GPU open today: `card0` (primary, KMS) and
//! `renderD128` (render). Each open is a DRM file of its own, as on Linux;
//! the ioctls arrive as calls whose first metadata word is the ioctl
//! number, and none is implemented yet, so each answers ENOTTY, the errno
//! Linux gives an ioctl a driver does not know.

use std::collections::HashMap;

use scheme_seam::{Context, Errno, HandleId, Opened, Result, Scheme};

/// Which device node a DRM file was opened through.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Node {
    /// `card0`: the primary node (KMS and render ioctls).
    Primary,
    /// `renderD128`: the render node.
    Render,
}

impl Node {
    fn from_path(path: &str) -> Option<Node> {
        match path.trim_matches('/') {
            "card0" => Some(Node::Primary),
            "renderD128" => Some(Node::Render),
            _ => None,
        }
    }
}

/// The DRM scheme: one entry per open DRM file.
#[derive(Debug, Default)]
pub struct DrmScheme {
    files: HashMap<HandleId, Node>,
    next: HandleId,
}

impl Scheme for DrmScheme {
    fn open(&mut self, path: &str, _flags: usize, _ctx: &mut Context) -> Result<Opened> {
        let node = Node::from_path(path).ok_or(Errno::ENOENT)?;
        self.next += 1;
        self.files.insert(self.next, node);
        Ok(Opened::Handle(self.next))
    }

    fn call(
        &mut self,
        id: HandleId,
        _payload: &mut [u8],
        metadata: &[u64],
        _ctx: &mut Context,
    ) -> Result<usize> {
        self.files.get(&id).ok_or(Errno::EBADF)?;
        metadata.first().ok_or(Errno::EINVAL)?;
        Err(Errno::ENOTTY)
    }

    fn close(&mut self, id: HandleId, _ctx: &mut Context) {
        self.files.remove(&id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use scheme_seam::Caller;

    #[test]
    fn both_nodes_open_as_separate_files_and_others_do_not() {
        let mut s = DrmScheme::default();
        let mut ctx = Context::new(Caller::default());
        let a = s.open("card0", 0, &mut ctx).unwrap();
        let b = s.open("renderD128", 0, &mut ctx).unwrap();
        let (Opened::Handle(a), Opened::Handle(b)) = (a, b) else {
            panic!("handles expected");
        };
        assert_ne!(a, b);
        assert_eq!(s.files[&a], Node::Primary);
        assert_eq!(s.files[&b], Node::Render);
        assert!(matches!(s.open("card1", 0, &mut ctx), Err(Errno::ENOENT)));
        assert_eq!(s.call(a, &mut [], &[0x00], &mut ctx), Err(Errno::ENOTTY));
        assert_eq!(s.call(a, &mut [], &[], &mut ctx), Err(Errno::EINVAL));
        s.close(a, &mut ctx);
        assert_eq!(s.call(a, &mut [], &[0], &mut ctx), Err(Errno::EBADF));
    }
}
