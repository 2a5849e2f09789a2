//! The driver's error type.

use std::time::Duration;

use virtio_gpu_proto::{CapsetError, CapsetId, CommandType, ResponseType};

use crate::command::{DeviceError, SubmitError};
use crate::dma::DmaError;
use crate::queue::QueueError;
use crate::transport::TransportError;

/// Everything that can go wrong driving the device.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The transport to the device failed.
    #[error(transparent)]
    Transport(#[from] TransportError),
    /// A virtqueue could not be set up.
    #[error(transparent)]
    Queue(#[from] QueueError),
    /// DMA memory could not be allocated.
    #[error(transparent)]
    Dma(#[from] DmaError),
    /// A command could not be submitted.
    #[error(transparent)]
    Submit(#[from] SubmitError),
    /// The device answered a command with an error.
    #[error(transparent)]
    Device(#[from] DeviceError),
    /// The device answered with a success code other than the expected one,
    /// or with fewer bytes than that answer has.
    #[error("{command}: expected {expected} ({expected_len} bytes), device answered {got} ({len} bytes)")]
    UnexpectedResponse {
        /// The command.
        command: CommandType,
        /// The response type the command calls for.
        expected: ResponseType,
        /// Its size.
        expected_len: usize,
        /// What the device sent.
        got: ResponseType,
        /// How many bytes it wrote.
        len: usize,
    },
    /// The device did not answer in time: it is stuck or the work is too
    /// large for the deadline.
    #[error("no answer from the device after {after:?} (waiting for {command:?})")]
    Timeout {
        /// The command waited for, if the wait was for one.
        command: Option<CommandType>,
        /// How long was waited.
        after: Duration,
    },
    /// The device does not offer a capset or its contents are invalid.
    #[error("capset {id:?}: {source}")]
    Capset {
        /// The capset.
        id: CapsetId,
        /// What is wrong.
        source: CapsetError,
    },
    /// The device does not list the capset asked for.
    #[error("the device offers no capset {0:?}")]
    NoSuchCapset(CapsetId),
    /// The operation needs a feature the device did not negotiate.
    #[error("the device did not negotiate {0}")]
    MissingFeature(&'static str),
    /// The completion asked for was already collected, or never existed.
    #[error("no such request in flight")]
    UnknownRequest,
}
