//! Host resources with guest backing: creation, backing attach, teardown.
//!
//! A resource is created on the host, then given backing pages in DMA
//! memory that transfers copy to and from (the sequence Linux issues for
//! the RESOURCE_CREATE ioctl, ABI reference §1.7).

use log::warn;
use virtio_gpu_proto::{
    Format, MemEntry, Resource3dParams, ResourceAttachBacking, ResourceCreate2d, ResourceCreate3d,
    ResourceId, ResourceUnref,
};
use zerocopy::IntoBytes;

use crate::device::Gpu;
use crate::dma::DmaBuf;
use crate::error::Error;
use crate::transport::Transport;

/// Backing is allocated in whole pages, as the device maps it by page.
pub const PAGE_SIZE: usize = 4096;

/// A host resource and the guest memory backing it.
#[derive(Debug)]
pub struct Resource {
    /// The device's id for it.
    pub id: ResourceId,
    /// Its backing pages.
    pub backing: DmaBuf,
}

impl<T: Transport> Gpu<T> {
    /// Creates a 3D resource with `backing_len` bytes of backing (rounded up
    /// to whole pages; 0 means one page, as in Linux).
    pub fn create_resource_3d(
        &mut self,
        params: &Resource3dParams,
        backing_len: usize,
    ) -> Result<Resource, Error> {
        let id = self.new_resource_id();
        self.call(&ResourceCreate3d::new(id, params), &[], None)?;
        self.attach_new_backing(id, backing_len)
    }

    /// Creates a 2D resource of `width × height` 32-bit pixels with backing.
    pub fn create_resource_2d(
        &mut self,
        format: Format,
        width: u32,
        height: u32,
    ) -> Result<Resource, Error> {
        let id = self.new_resource_id();
        self.call(&ResourceCreate2d::new(id, format, width, height), &[], None)?;
        self.attach_new_backing(id, width as usize * height as usize * 4)
    }

    fn attach_new_backing(&mut self, id: ResourceId, len: usize) -> Result<Resource, Error> {
        let len = len.max(1).next_multiple_of(PAGE_SIZE);
        let attached = self
            .pool()
            .alloc(len, PAGE_SIZE)
            .map_err(Error::from)
            .and_then(|backing| {
                let entry = MemEntry::new(backing.device_addr(), len as u32);
                self.call(&ResourceAttachBacking::new(id, 1), entry.as_bytes(), None)?;
                Ok(backing)
            });
        match attached {
            Ok(backing) => Ok(Resource { id, backing }),
            Err(e) => {
                // Do not leak the host object of a half-made resource.
                if let Err(unref) = self.call(&ResourceUnref::new(id), &[], None) {
                    warn!("releasing {id:?} after a failed attach: {unref}");
                }
                Err(e)
            }
        }
    }

    /// Releases a resource on the host; its backing returns to the pool
    /// once the device has answered, so it is never reused while in use.
    pub fn destroy_resource(&mut self, resource: Resource) -> Result<(), Error> {
        self.call(&ResourceUnref::new(resource.id), &[], None)?;
        drop(resource.backing);
        Ok(())
    }
}
