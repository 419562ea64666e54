//! The virtio-net header a tun device with IFF_VNET_HDR puts before each packet, and what
//! a packet handed over with segmentation offload would weigh on a real wire.
//!
//! With offload, TCP gives the device one packet of up to 64 KiB that a NIC would cut
//! into segments of `gso_size` bytes, each with its own IP and TCP headers. The delay
//! line moves it as one packet (a seventh of the system calls at MTU 9000) but charges
//! the link for every segment's headers, so the emulated rate stays the wire's.

/// `struct virtio_net_hdr`: flags, gso_type, hdr_len, gso_size, csum_start,
/// csum_offset; the size a tun device uses unless told otherwise.
pub const HEADER_LEN: usize = 10;

const GSO_NONE: u8 = 0;
const GSO_ECN: u8 = 0x80;
const IPPROTO_TCP: u8 = 6;
const IPV6_HEADER_LEN: usize = 40;

/// Bytes on the wire for one frame read from a device with a virtio-net header: the IP
/// packet, plus the headers of every further segment when it is a TSO packet. A frame
/// whose headers cannot be read counts as the IP packet alone.
pub fn wire_bytes(frame: &[u8]) -> usize {
    let Some((header, packet)) = frame.split_at_checked(HEADER_LEN) else {
        return frame.len();
    };
    let gso_type = header[1] & !GSO_ECN;
    let gso_size = usize::from(u16::from_le_bytes([header[4], header[5]]));
    if gso_type == GSO_NONE || gso_size == 0 {
        return packet.len();
    }
    let Some(headers) = tcp_ip_headers(packet) else {
        return packet.len();
    };
    let payload = packet.len().saturating_sub(headers);
    let segments = payload.div_ceil(gso_size).max(1);
    packet.len() + (segments - 1) * headers
}

/// Length of the IP and TCP headers at the start of `packet`, if it is TCP.
fn tcp_ip_headers(packet: &[u8]) -> Option<usize> {
    let ip_header = match packet.first()? >> 4 {
        4 => {
            let ihl = usize::from(packet[0] & 0x0f) * 4;
            (*packet.get(9)? == IPPROTO_TCP && ihl >= 20).then_some(ihl)?
        }
        6 => (*packet.get(6)? == IPPROTO_TCP).then_some(IPV6_HEADER_LEN)?,
        _ => return None,
    };
    let data_offset = usize::from(packet.get(ip_header + 12)? >> 4) * 4;
    (data_offset >= 20).then_some(ip_header + data_offset)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A frame: virtio-net header, an IPv4 header of 20 bytes, a TCP header of 32
    /// (timestamps), and `payload` bytes.
    fn tcp4_frame(gso_type: u8, gso_size: u16, payload: usize) -> Vec<u8> {
        let mut frame = vec![0u8; HEADER_LEN + 20 + 32 + payload];
        frame[1] = gso_type;
        frame[4..6].copy_from_slice(&gso_size.to_le_bytes());
        let ip = &mut frame[HEADER_LEN..];
        ip[0] = 0x45;
        ip[9] = IPPROTO_TCP;
        ip[20 + 12] = 8 << 4;
        frame
    }

    #[test]
    fn a_plain_packet_weighs_its_ip_bytes() {
        assert_eq!(wire_bytes(&tcp4_frame(GSO_NONE, 0, 1000)), 1052);
    }

    #[test]
    fn a_tso_packet_pays_the_headers_of_every_segment() {
        // 7 segments of 8948 - 52 = 8896 bytes: 6 more sets of 52 bytes of headers.
        let frame = tcp4_frame(1, 8896, 7 * 8896);
        assert_eq!(wire_bytes(&frame), 52 + 7 * 8896 + 6 * 52);
        // A short last segment is a segment too; ECN does not change the count.
        let frame = tcp4_frame(1 | GSO_ECN, 8896, 2 * 8896 + 1);
        assert_eq!(wire_bytes(&frame), 52 + 2 * 8896 + 1 + 2 * 52);
    }

    #[test]
    fn ipv6_tso_packets_count_the_same_way() {
        let mut frame = vec![0u8; HEADER_LEN + 40 + 20 + 3000];
        frame[1] = 4;
        frame[4..6].copy_from_slice(&1000u16.to_le_bytes());
        frame[HEADER_LEN] = 0x60;
        frame[HEADER_LEN + 6] = IPPROTO_TCP;
        frame[HEADER_LEN + 40 + 12] = 5 << 4;
        assert_eq!(wire_bytes(&frame), 60 + 3000 + 2 * 60);
    }

    #[test]
    fn unreadable_frames_count_as_they_are() {
        assert_eq!(wire_bytes(&[1, 2, 3]), 3);
        // A TSO header over something that is not TCP: the IP packet alone.
        let mut frame = tcp4_frame(1, 1000, 5000);
        frame[HEADER_LEN + 9] = 17;
        assert_eq!(wire_bytes(&frame), frame.len() - HEADER_LEN);
    }
}
