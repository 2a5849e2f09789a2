//! What drmd knows of the device: what virtio-gpud negotiated (for
//! GETPARAM), its capsets (for GET_CAPS), and syncd's view of its fences.

use std::io;

use syncd::client::TimelinePage;
use virtio_gpu_proto::Features;
use virtio_gpud::api::CapsetEntry;
use virtio_gpud::client::Session;

/// The device, as drmd's clients see it.
#[derive(Debug)]
pub struct Device {
    /// Negotiated features.
    pub features: Features,
    /// Capsets the device offers.
    pub capsets: Vec<CapsetEntry>,
    /// A session of drmd's own, for device-wide queries.
    control: Session,
    /// The syncd timeline of device fences and its page, once syncd answers.
    fences: Option<(u32, TimelinePage)>,
}

impl Device {
    /// Learns the device from virtio-gpud.
    pub fn open() -> io::Result<Device> {
        let control = Session::open().map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("cannot reach virtio-gpud (scheme:virtio-gpu): {e}"),
            )
        })?;
        let (info, capsets) = control.info()?;
        Ok(Device {
            features: Features::from_bits_retain(info.features),
            capsets,
            control,
            fences: None,
        })
    }

    /// The capset `id`'s data at `version`, from virtio-gpud's cache.
    pub fn capset(&self, id: u32, version: u32) -> io::Result<Vec<u8>> {
        let size = self
            .capsets
            .iter()
            .find(|c| c.id == id)
            .map_or(0, |c| c.max_size);
        self.control.capset(id, version, size as usize)
    }

    /// Bit N set for each capset id N the device lists.
    pub fn capset_mask(&self) -> u64 {
        self.capsets
            .iter()
            .filter(|c| c.id < 64)
            .fold(0, |m, c| m | 1 << c.id)
    }

    /// The syncd timeline of device fences and its page (connecting the
    /// first time: syncd may start after drmd's own start-up).
    pub fn fences(&mut self) -> io::Result<&(u32, TimelinePage)> {
        if self.fences.is_none() {
            let timeline = self.control.timeline()?;
            self.fences = Some((timeline, TimelinePage::open()?));
        }
        Ok(self.fences.as_ref().expect("just set"))
    }

    /// Whether device fence `point` has signalled (0: nothing to wait for).
    pub fn signaled(&mut self, point: u64) -> io::Result<bool> {
        if point == 0 {
            return Ok(true);
        }
        let (timeline, page) = self.fences()?;
        match page.last_signaled(*timeline) {
            Some(last) => Ok(last >= point),
            None => Err(io::Error::other("device timeline has no slot on the page")),
        }
    }
}
