//! One table of every request's wire layout, derived from the request
//! structs (`size_of`, `offset_of!` and each request's response type), so
//! that admission, the object table, the trace and the device's response
//! buffers read sizes and field offsets from the same place.

use core::mem::{offset_of, size_of};

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
use crate::message::Request;
use crate::types::CommandType;

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

#[cfg(test)]
mod tests {
    use super::ResourceField::{Creates, Names};
    use super::*;
    use crate::types::Queue;

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
