//! The traits that tie each request struct to its command code and its response.

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

use crate::header::CtrlHdr;
use crate::types::{CommandType, ResponseType};

/// A fixed-size request struct: the bytes to put in the device-readable buffer
/// (followed by the request's trailing payload, if it has one).
pub trait Request: IntoBytes + Immutable {
    /// The command code the constructors put in the header.
    const TYPE: CommandType;
    /// What the device answers with on success.
    type Response: Response;

    /// The request header.
    fn hdr(&self) -> &CtrlHdr;
    /// The request header, for the queue to stamp fence and ring information on
    /// at submission time.
    fn hdr_mut(&mut self) -> &mut CtrlHdr;
}

/// A success response struct: the device-writable buffer must be at least this big.
///
/// Error responses are a bare [`CtrlHdr`], so parse the header first and check its
/// type against [`Response::TYPE`] before reading the rest.
pub trait Response: FromBytes + KnownLayout + Immutable + Copy {
    /// The response code that signals success with this payload.
    const TYPE: ResponseType;
}

/// The header-only `RESP_OK_NODATA` answer most commands get.
///
/// [§5.7 Device Operation: Request header](https://docs.oasis-open.org/virtio/virtio/v1.2/virtio-v1.2.html#x1-3650007)
#[repr(C)]
#[derive(FromBytes, IntoBytes, Immutable, KnownLayout, Unaligned, Clone, Copy, Debug, Default)]
pub struct RespNodata {
    /// Response header.
    pub hdr: CtrlHdr,
}

const _: () = assert!(core::mem::size_of::<RespNodata>() == 24);

impl Response for RespNodata {
    const TYPE: ResponseType = ResponseType::OK_NODATA;
}

/// The "answer" of cursor-queue commands, which the device returns with
/// nothing written: a zero-sized response, so no response buffer is given.
#[repr(C)]
#[derive(FromBytes, IntoBytes, Immutable, KnownLayout, Unaligned, Clone, Copy, Debug, Default)]
pub struct NoResponse;

impl Response for NoResponse {
    /// Never on the wire: nothing is written for these commands.
    const TYPE: ResponseType = ResponseType(0);
}

/// Implements [`Request`] for a struct whose header field is `hdr`.
///
/// The optional leading `<const NAME: bool>` covers the layouts shared by two
/// commands, where the const parameter picks the command code.
macro_rules! impl_request {
    (@impl [$($generics:tt)*] $ty:ty => $code:expr, $resp:ty) => {
        impl<$($generics)*> $crate::message::Request for $ty {
            const TYPE: $crate::types::CommandType = $code;
            type Response = $resp;

            fn hdr(&self) -> &$crate::header::CtrlHdr {
                &self.hdr
            }

            fn hdr_mut(&mut self) -> &mut $crate::header::CtrlHdr {
                &mut self.hdr
            }
        }
    };
    (<const $param:ident: bool> $ty:ty => $code:expr, $resp:ty) => {
        $crate::message::impl_request!(@impl [const $param: bool] $ty => $code, $resp);
    };
    ($ty:ty => $code:expr, $resp:ty) => {
        $crate::message::impl_request!(@impl [] $ty => $code, $resp);
    };
}

pub(crate) use impl_request;
