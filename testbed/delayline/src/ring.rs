//! The packets on their way through one direction of the link, in delivery order, in one
//! contiguous byte ring: each packet is read from the tun device straight into its place,
//! and written from there, so forwarding allocates nothing per packet.
//!
//! An entry is a 16-byte header (delivery time, length) and the packet, padded to 8
//! bytes. An entry that does not fit before the end of the buffer starts at offset 0; the
//! tail it skips is marked with a wrap header when a header fits there.

const HEADER: usize = 16;
const WRAP: u32 = u32::MAX;

pub struct PacketRing {
    buf: Vec<u8>,
    /// Offset of the oldest entry (or of a wrap marker before it).
    read: usize,
    /// Offset where the next entry would go.
    write: usize,
    packets: usize,
    queued_bytes: usize,
    max_capacity: usize,
    /// Where `slot` placed the packet that `commit` completes.
    pending: Option<usize>,
}

impl PacketRing {
    /// A ring of `capacity` bytes that doubles when full, up to `max_capacity`.
    pub fn new(capacity: usize, max_capacity: usize) -> PacketRing {
        let capacity = round_up(capacity.max(HEADER * 4));
        PacketRing {
            buf: resident_zeros(capacity),
            read: 0,
            write: 0,
            packets: 0,
            queued_bytes: 0,
            max_capacity: max_capacity.max(capacity),
            pending: None,
        }
    }

    pub fn capacity(&self) -> usize {
        self.buf.len()
    }

    pub fn packets(&self) -> usize {
        self.packets
    }

    /// Sum of the lengths of the packets held.
    pub fn queued_bytes(&self) -> usize {
        self.queued_bytes
    }

    /// Room for a packet of up to `max_len` bytes, to be completed by `commit`; `None`
    /// when the ring is at its largest and full.
    pub fn slot(&mut self, max_len: usize) -> Option<&mut [u8]> {
        let need = HEADER + round_up(max_len);
        let position = loop {
            if let Some(position) = self.free_position(need) {
                break position;
            }
            if !self.grow(need) {
                return None;
            }
        };
        self.pending = Some(position);
        let start = position + HEADER;
        Some(&mut self.buf[start..start + max_len])
    }

    /// Keeps the first `len` bytes of the last slot, to be delivered at `due`.
    pub fn commit(&mut self, len: usize, due: u64) {
        let position = self
            .pending
            .take()
            .expect("commit follows a successful slot");
        if position == 0 && self.write != 0 && self.write + HEADER <= self.buf.len() {
            self.put_header(self.write, 0, WRAP);
        }
        self.put_header(position, due, len as u32);
        self.write = position + HEADER + round_up(len);
        self.packets += 1;
        self.queued_bytes += len;
    }

    /// The oldest packet and its delivery time.
    pub fn front(&self) -> Option<(u64, &[u8])> {
        if self.packets == 0 {
            return None;
        }
        let (due, len) = self.header(self.read);
        let start = self.read + HEADER;
        Some((due, &self.buf[start..start + len as usize]))
    }

    /// Forgets the oldest packet.
    pub fn pop(&mut self) {
        if self.packets == 0 {
            return;
        }
        let (_, len) = self.header(self.read);
        self.read += HEADER + round_up(len as usize);
        self.packets -= 1;
        self.queued_bytes -= len as usize;
        if self.packets == 0 {
            self.read = 0;
            self.write = 0;
        } else {
            self.skip_wrap();
        }
    }

    /// Forgets every packet.
    pub fn clear(&mut self) {
        self.read = 0;
        self.write = 0;
        self.packets = 0;
        self.queued_bytes = 0;
    }

    fn free_position(&self, need: usize) -> Option<usize> {
        let capacity = self.buf.len();
        if self.packets == 0 {
            return (need <= capacity).then_some(0);
        }
        if self.write > self.read {
            if capacity - self.write >= need {
                Some(self.write)
            } else if self.read >= need {
                Some(0)
            } else {
                None
            }
        } else if self.write < self.read && self.read - self.write >= need {
            Some(self.write)
        } else {
            None
        }
    }

    /// Moves the entries, oldest first, to the start of a buffer twice as large; false
    /// when that would pass the limit or could never hold `need` bytes.
    fn grow(&mut self, need: usize) -> bool {
        let capacity = self.buf.len() * 2;
        if capacity > self.max_capacity || need > self.max_capacity {
            return false;
        }
        let mut grown = resident_zeros(capacity);
        let mut position = 0;
        let mut read = self.read;
        for _ in 0..self.packets {
            let (_, len) = self.header(read);
            let size = HEADER + round_up(len as usize);
            grown[position..position + size].copy_from_slice(&self.buf[read..read + size]);
            position += size;
            read += size;
            if read + HEADER > self.buf.len() || self.header(read).1 == WRAP {
                read = 0;
            }
        }
        self.buf = grown;
        self.read = 0;
        self.write = position;
        true
    }

    fn skip_wrap(&mut self) {
        if self.read + HEADER > self.buf.len() || self.header(self.read).1 == WRAP {
            self.read = 0;
        }
    }

    fn header(&self, position: usize) -> (u64, u32) {
        let bytes = &self.buf[position..position + HEADER];
        let due = u64::from_le_bytes(bytes[0..8].try_into().expect("8 bytes"));
        let len = u32::from_le_bytes(bytes[8..12].try_into().expect("4 bytes"));
        (due, len)
    }

    fn put_header(&mut self, position: usize, due: u64, len: u32) {
        let bytes = &mut self.buf[position..position + HEADER];
        bytes[0..8].copy_from_slice(&due.to_le_bytes());
        bytes[8..12].copy_from_slice(&len.to_le_bytes());
    }
}

/// A zeroed buffer whose every page is already in memory. A fresh allocation is mapped
/// page by page on first touch, and in a VM that hands free memory back to its host
/// (free page reporting) each such fault costs a trip to the host (about 2.6 s per GB on
/// the machine of 2026-11-23): paid when the link comes up, not while it forwards.
fn resident_zeros(len: usize) -> Vec<u8> {
    let mut buf = vec![0; len];
    // black_box: the compiler may not treat the freshly zeroed pages as already written.
    for page in buf.chunks_mut(4096) {
        page[0] = std::hint::black_box(0);
    }
    buf
}

fn round_up(len: usize) -> usize {
    len.div_ceil(8) * 8
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::VecDeque;

    fn push(ring: &mut PacketRing, packet: &[u8], due: u64) -> bool {
        match ring.slot(packet.len().max(1)) {
            Some(slot) => {
                slot[..packet.len()].copy_from_slice(packet);
                ring.commit(packet.len(), due);
                true
            }
            None => false,
        }
    }

    fn packet(seed: usize, len: usize) -> Vec<u8> {
        (0..len).map(|i| (seed * 31 + i * 7) as u8).collect()
    }

    #[test]
    fn packets_come_out_in_order_with_their_times() {
        let mut ring = PacketRing::new(1024, 1024);
        assert!(push(&mut ring, &packet(1, 100), 10));
        assert!(push(&mut ring, &packet(2, 3), 20));
        assert_eq!(ring.packets(), 2);
        assert_eq!(ring.queued_bytes(), 103);
        assert_eq!(ring.front(), Some((10, &packet(1, 100)[..])));
        ring.pop();
        assert_eq!(ring.front(), Some((20, &packet(2, 3)[..])));
        ring.pop();
        assert_eq!(ring.front(), None);
        assert_eq!(ring.queued_bytes(), 0);
    }

    #[test]
    fn an_abandoned_slot_keeps_nothing() {
        let mut ring = PacketRing::new(1024, 1024);
        assert!(ring.slot(500).is_some());
        assert!(push(&mut ring, &packet(1, 10), 1));
        assert_eq!(ring.packets(), 1);
        assert_eq!(ring.front(), Some((1, &packet(1, 10)[..])));
    }

    #[test]
    fn full_ring_at_its_limit_refuses_and_recovers() {
        let mut ring = PacketRing::new(256, 256);
        // Entries of 16 + 64 bytes: three fit in 256.
        assert!(push(&mut ring, &packet(1, 64), 1));
        assert!(push(&mut ring, &packet(2, 64), 2));
        assert!(push(&mut ring, &packet(3, 64), 3));
        assert!(!push(&mut ring, &packet(4, 64), 4));
        ring.pop();
        // The freed room is at the start: the next entry wraps there.
        assert!(push(&mut ring, &packet(4, 64), 4));
        for expected in 2..=4 {
            assert_eq!(
                ring.front(),
                Some((expected, &packet(expected as usize, 64)[..]))
            );
            ring.pop();
        }
        assert_eq!(ring.front(), None);
    }

    #[test]
    fn growing_keeps_order_across_a_wrap() {
        let mut ring = PacketRing::new(256, 4096);
        assert!(push(&mut ring, &packet(1, 64), 1));
        assert!(push(&mut ring, &packet(2, 64), 2));
        assert!(push(&mut ring, &packet(3, 64), 3));
        ring.pop();
        assert!(push(&mut ring, &packet(4, 64), 4));
        // Full and wrapped: the next push doubles the buffer.
        assert!(push(&mut ring, &packet(5, 200), 5));
        assert_eq!(ring.capacity(), 512);
        for (expected, len) in [(2, 64), (3, 64), (4, 64), (5, 200)] {
            assert_eq!(
                ring.front(),
                Some((expected, &packet(expected as usize, len)[..]))
            );
            ring.pop();
        }
    }

    /// Random sizes and interleavings against a plain queue.
    #[test]
    fn agrees_with_a_queue_under_churn() {
        let mut ring = PacketRing::new(4096, 64 * 1024);
        let mut model: VecDeque<(u64, Vec<u8>)> = VecDeque::new();
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = |bound: u64| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state % bound
        };
        let mut refused = 0;
        for step in 0..20_000u64 {
            if next(3) < 2 {
                let bytes = packet(step as usize, 1 + next(1500) as usize);
                if push(&mut ring, &bytes, step) {
                    model.push_back((step, bytes));
                } else {
                    refused += 1;
                }
            } else {
                assert_eq!(ring.front(), model.front().map(|(t, p)| (*t, &p[..])));
                ring.pop();
                model.pop_front();
            }
            assert_eq!(ring.packets(), model.len());
            let bytes: usize = model.iter().map(|(_, p)| p.len()).sum();
            assert_eq!(ring.queued_bytes(), bytes);
        }
        // Pushes outnumber pops two to one: the ring must have reached its limit.
        assert_eq!(ring.capacity(), 64 * 1024);
        assert!(refused > 0);
        while let Some((due, bytes)) = model.pop_front() {
            assert_eq!(ring.front(), Some((due, &bytes[..])));
            ring.pop();
        }
        assert_eq!(ring.front(), None);
    }
}
