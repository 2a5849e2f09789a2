//! One table of every request's wire layout, derived from the request
//! structs (`size_of`, `offset_of!` and each request's response type), so
//! that admission, the object table, the trace and the device's response
//! buffers read sizes and field offsets from the same place.

use alloc::vec::Vec;
use core::mem::{offset_of, size_of};

use zerocopy::FromBytes;

use crate::blob::{ResourceCreateBlob, ResourceMapBlob, ResourceUnmapBlob, SetScanoutBlob};
use crate::capset::{GetCapset, GetCapsetInfo};
use crate::cmd2d::{
    ResourceAssignUuid, ResourceAttachBacking, ResourceCreate2d, ResourceDetachBacking,
    ResourceFlush, ResourceUnref, SetScanout, TransferToHost2d,
};
use crate::cmd3d::{
    CmdSubmit, CtxAttachResource, CtxCreate, CtxDestroy, CtxDetachResource, ResourceCreate3d,
    TransferFromHost3d, TransferToHost3d,
};
use crate::cursor::{MoveCursor, UpdateCursor};
use crate::display::{GetDisplayInfo, GetEdid};
use crate::header::CtrlHdr;
use crate::message::Request;
use crate::types::{CommandType, Queue};

/// How one request is laid out on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    /// The command.
    pub ty: CommandType,
    /// Bytes of the fixed part, which the device reads before any trailing
    /// payload (memory entries, a command stream).
    pub request_len: usize,
    /// Bytes of the success answer: 0 on the cursor queue, where the
    /// device writes nothing. GET_CAPSET's answer is followed by the
    /// capset itself, whose size the device gave in GET_CAPSET_INFO.
    pub response_len: usize,
    /// Where the resource id the command names lies, if it names one.
    pub resource: Option<ResourceField>,
}

/// The offset of a resource id in a request, and what the id means.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResourceField {
    /// An existing resource the command acts on.
    Names(usize),
    /// The id a create gives the new resource.
    Creates(usize),
}

impl Layout {
    const fn of<R: Request>() -> Layout {
        Layout {
            ty: R::TYPE,
            request_len: size_of::<R>(),
            response_len: size_of::<R::Response>(),
            resource: None,
        }
    }

    const fn acting_on<R: Request>(at: usize) -> Layout {
        Layout {
            resource: Some(ResourceField::Names(at)),
            ..Layout::of::<R>()
        }
    }

    const fn creating<R: Request>(at: usize) -> Layout {
        Layout {
            resource: Some(ResourceField::Creates(at)),
            ..Layout::of::<R>()
        }
    }

    /// Offset of the id of an existing resource the command acts on (not
    /// of the id a create gives a new one).
    pub fn named_resource_field(&self) -> Option<usize> {
        match self.resource? {
            ResourceField::Names(at) => Some(at),
            ResourceField::Creates(_) => None,
        }
    }

    /// The resource id `request` (a request of this layout) names or
    /// creates, if it has one and is long enough to hold it.
    pub fn resource_id(&self, request: &[u8]) -> Option<u32> {
        let (ResourceField::Names(at) | ResourceField::Creates(at)) = self.resource?;
        let bytes = request.get(at..at + 4)?;
        Some(u32::from_le_bytes(bytes.try_into().ok()?))
    }
}

/// Every request this crate defines.
pub const LAYOUTS: [Layout; 24] = [
    Layout::of::<GetDisplayInfo>(),
    Layout::creating::<ResourceCreate2d>(offset_of!(ResourceCreate2d, resource_id)),
    Layout::acting_on::<ResourceUnref>(offset_of!(ResourceUnref, resource_id)),
    Layout::acting_on::<SetScanout>(offset_of!(SetScanout, resource_id)),
    Layout::acting_on::<ResourceFlush>(offset_of!(ResourceFlush, resource_id)),
    Layout::acting_on::<TransferToHost2d>(offset_of!(TransferToHost2d, resource_id)),
    Layout::acting_on::<ResourceAttachBacking>(offset_of!(ResourceAttachBacking, resource_id)),
    Layout::acting_on::<ResourceDetachBacking>(offset_of!(ResourceDetachBacking, resource_id)),
    Layout::of::<GetCapsetInfo>(),
    Layout::of::<GetCapset>(),
    Layout::of::<GetEdid>(),
    Layout::acting_on::<ResourceAssignUuid>(offset_of!(ResourceAssignUuid, resource_id)),
    Layout::creating::<ResourceCreateBlob>(offset_of!(ResourceCreateBlob, resource_id)),
    Layout::acting_on::<SetScanoutBlob>(offset_of!(SetScanoutBlob, resource_id)),
    Layout::of::<CtxCreate>(),
    Layout::of::<CtxDestroy>(),
    Layout::acting_on::<CtxAttachResource>(offset_of!(CtxAttachResource, resource_id)),
    Layout::acting_on::<CtxDetachResource>(offset_of!(CtxDetachResource, resource_id)),
    Layout::creating::<ResourceCreate3d>(offset_of!(ResourceCreate3d, resource_id)),
    Layout::acting_on::<TransferToHost3d>(offset_of!(TransferToHost3d, resource_id)),
    Layout::acting_on::<TransferFromHost3d>(offset_of!(TransferFromHost3d, resource_id)),
    Layout::of::<CmdSubmit>(),
    Layout::acting_on::<ResourceMapBlob>(offset_of!(ResourceMapBlob, resource_id)),
    Layout::acting_on::<ResourceUnmapBlob>(offset_of!(ResourceUnmapBlob, resource_id)),
];

/// The cursor queue's requests.
pub const CURSOR_LAYOUTS: [Layout; 2] = [
    Layout::acting_on::<UpdateCursor>(offset_of!(UpdateCursor, resource_id)),
    Layout::acting_on::<MoveCursor>(offset_of!(MoveCursor, resource_id)),
];

/// The layout of command `ty`, if this crate defines it.
pub fn layout(ty: CommandType) -> Option<&'static Layout> {
    LAYOUTS.iter().chain(&CURSOR_LAYOUTS).find(|l| l.ty == ty)
}

/// A request in bytes (header first) whose header was read once: a type
/// the table knows and a fixed part of its layout's length. Admission, the
/// trace and the queues take it, so that none of them reads the header or
/// looks the layout up again. `B` is the buffer (`&mut [u8]` where
/// admission writes the ids it assigns, `&[u8]` to place it).
#[derive(Debug)]
pub struct Wire<B> {
    layout: &'static Layout,
    bytes: B,
}

/// Why bytes are no request of the table's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WireError {
    /// Shorter than a header.
    NoHeader,
    /// A command type the table does not have.
    Unknown(CommandType),
    /// Shorter than the command's fixed part.
    Short {
        /// The command.
        ty: CommandType,
        /// Bytes given.
        len: usize,
    },
}

impl<B: AsRef<[u8]>> Wire<B> {
    /// Reads `bytes`' header and finds its layout.
    pub fn parse(bytes: B) -> Result<Wire<B>, WireError> {
        let (hdr, _) =
            CtrlHdr::read_from_prefix(bytes.as_ref()).map_err(|_| WireError::NoHeader)?;
        let ty = hdr.command_type();
        let layout = layout(ty).ok_or(WireError::Unknown(ty))?;
        let len = bytes.as_ref().len();
        if len < layout.request_len {
            return Err(WireError::Short { ty, len });
        }
        Ok(Wire { layout, bytes })
    }

    /// The command.
    pub fn ty(&self) -> CommandType {
        self.layout.ty
    }

    /// The queue it goes on.
    pub fn queue(&self) -> Queue {
        self.layout.ty.queue()
    }

    /// Its layout.
    pub fn layout(&self) -> &'static Layout {
        self.layout
    }

    /// The header as the bytes hold it now.
    pub fn header(&self) -> CtrlHdr {
        CtrlHdr::read_from_prefix(self.bytes.as_ref())
            .expect("parsed with a header")
            .0
    }

    /// The whole request: fixed part and trailing payload.
    pub fn bytes(&self) -> &[u8] {
        self.bytes.as_ref()
    }

    /// The resource id it names or creates, if its layout has one.
    pub fn resource_id(&self) -> Option<u32> {
        self.layout.resource_id(self.bytes.as_ref())
    }

    /// The same request, read-only (to place it).
    pub fn as_ref(&self) -> Wire<&[u8]> {
        Wire {
            layout: self.layout,
            bytes: self.bytes.as_ref(),
        }
    }
}

impl<B: AsMut<[u8]>> Wire<B> {
    /// The bytes, to write (the ids admission assigns).
    pub fn bytes_mut(&mut self) -> &mut [u8] {
        self.bytes.as_mut()
    }
}

impl<'a> Wire<&'a mut [u8]> {
    /// The fixed part, as a request of its own, and what trails it.
    pub fn split_payload(self) -> (Wire<&'a mut [u8]>, &'a mut [u8]) {
        let (fixed, tail) = self.bytes.split_at_mut(self.layout.request_len);
        (
            Wire {
                layout: self.layout,
                bytes: fixed,
            },
            tail,
        )
    }
}

impl Wire<Vec<u8>> {
    /// A typed request's bytes, kept (to place later).
    pub fn owned<R: Request>(request: &R) -> Wire<Vec<u8>> {
        Wire {
            layout: layout(R::TYPE).expect("every request type has a layout"),
            bytes: request.as_bytes().to_vec(),
        }
    }
}

impl<'a> Wire<&'a [u8]> {
    /// A typed request's bytes, whose layout its type gives.
    pub fn of<R: Request>(request: &'a R) -> Wire<&'a [u8]> {
        Wire {
            layout: layout(R::TYPE).expect("every request type has a layout"),
            bytes: request.as_bytes(),
        }
    }
}

#[cfg(test)]
mod tests {
    use zerocopy::IntoBytes;

    use super::ResourceField::{Creates, Names};
    use super::*;

    /// The sizes and offsets of the ABI reference (§1.5), written out once
    /// here to hold the derived table to them.
    #[test]
    fn the_table_matches_the_abi_reference() {
        let expect = [
            (CommandType::GET_DISPLAY_INFO, 24, 408, None),
            (CommandType::RESOURCE_CREATE_2D, 40, 24, Some(Creates(24))),
            (CommandType::RESOURCE_UNREF, 32, 24, Some(Names(24))),
            (CommandType::SET_SCANOUT, 48, 24, Some(Names(44))),
            (CommandType::RESOURCE_FLUSH, 48, 24, Some(Names(40))),
            (CommandType::TRANSFER_TO_HOST_2D, 56, 24, Some(Names(48))),
            (
                CommandType::RESOURCE_ATTACH_BACKING,
                32,
                24,
                Some(Names(24)),
            ),
            (
                CommandType::RESOURCE_DETACH_BACKING,
                32,
                24,
                Some(Names(24)),
            ),
            (CommandType::GET_CAPSET_INFO, 32, 40, None),
            (CommandType::GET_CAPSET, 32, 24, None),
            (CommandType::GET_EDID, 32, 1056, None),
            (CommandType::RESOURCE_ASSIGN_UUID, 32, 40, Some(Names(24))),
            (CommandType::RESOURCE_CREATE_BLOB, 56, 24, Some(Creates(24))),
            (CommandType::SET_SCANOUT_BLOB, 96, 24, Some(Names(44))),
            (CommandType::CTX_CREATE, 96, 24, None),
            (CommandType::CTX_DESTROY, 24, 24, None),
            (CommandType::CTX_ATTACH_RESOURCE, 32, 24, Some(Names(24))),
            (CommandType::CTX_DETACH_RESOURCE, 32, 24, Some(Names(24))),
            (CommandType::RESOURCE_CREATE_3D, 72, 24, Some(Creates(24))),
            (CommandType::TRANSFER_TO_HOST_3D, 72, 24, Some(Names(56))),
            (CommandType::TRANSFER_FROM_HOST_3D, 72, 24, Some(Names(56))),
            (CommandType::SUBMIT_3D, 32, 24, None),
            (CommandType::RESOURCE_MAP_BLOB, 40, 32, Some(Names(24))),
            (CommandType::RESOURCE_UNMAP_BLOB, 32, 24, Some(Names(24))),
            (CommandType::UPDATE_CURSOR, 56, 0, Some(Names(40))),
            (CommandType::MOVE_CURSOR, 56, 0, Some(Names(40))),
        ];
        assert_eq!(LAYOUTS.len() + CURSOR_LAYOUTS.len(), expect.len());
        for (ty, request_len, response_len, resource) in expect {
            let want = Layout {
                ty,
                request_len,
                response_len,
                resource,
            };
            assert_eq!(layout(ty), Some(&want), "{ty}");
        }
        for l in &CURSOR_LAYOUTS {
            assert_eq!(l.ty.queue(), Queue::Cursor);
        }
        for l in &LAYOUTS {
            assert_eq!(l.ty.queue(), Queue::Control);
        }
        assert_eq!(layout(CommandType(0xffff)), None);
    }

    #[test]
    fn wire_takes_only_known_requests_of_their_fixed_length() {
        let res = crate::ResourceId::new(7).unwrap();
        let flush = ResourceFlush::new(res, crate::Rect::new(0, 0, 1, 1));
        let wire = Wire::parse(flush.as_bytes()).unwrap();
        assert_eq!(wire.ty(), CommandType::RESOURCE_FLUSH);
        assert_eq!(wire.resource_id(), Some(7));
        assert_eq!(wire.queue(), Queue::Control);
        let short = &flush.as_bytes()[..47];
        assert_eq!(
            Wire::parse(short).unwrap_err(),
            WireError::Short {
                ty: CommandType::RESOURCE_FLUSH,
                len: 47
            }
        );
        let unknown = CtrlHdr::new(CommandType(0x0999));
        assert_eq!(
            Wire::parse(unknown.as_bytes()).unwrap_err(),
            WireError::Unknown(CommandType(0x0999))
        );
        assert_eq!(
            Wire::parse(&[0u8; 23][..]).unwrap_err(),
            WireError::NoHeader
        );
        let mut bytes = flush.as_bytes().to_vec();
        bytes.extend_from_slice(&[1, 2, 3]);
        let (fixed, tail) = Wire::parse(&mut bytes[..]).unwrap().split_payload();
        assert_eq!((fixed.bytes().len(), &tail[..]), (48, &[1u8, 2, 3][..]));
    }

    #[test]
    fn a_resource_id_is_read_only_where_the_layout_has_one() {
        let flush = layout(CommandType::RESOURCE_FLUSH).unwrap();
        let mut request = [0u8; 48];
        request[40..44].copy_from_slice(&7u32.to_le_bytes());
        assert_eq!(flush.resource_id(&request), Some(7));
        assert_eq!(flush.resource_id(&request[..43]), None);
        assert_eq!(flush.named_resource_field(), Some(40));
        let ctx = layout(CommandType::CTX_CREATE).unwrap();
        assert_eq!(ctx.resource_id(&[0; 96]), None);
        let create = layout(CommandType::RESOURCE_CREATE_2D).unwrap();
        assert_eq!(create.named_resource_field(), None);
        let mut request = [0u8; 40];
        request[24..28].copy_from_slice(&9u32.to_le_bytes());
        assert_eq!(create.resource_id(&request), Some(9));
    }
}
