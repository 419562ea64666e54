//! Records written by MM2's own classes (see fixtures/mm2_records.txt).

const MM2_RECORDS: &str = include_str!("fixtures/mm2_records.txt");

fn hex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).expect("fixture is hex"))
        .collect()
}

/// The key and value bytes of the fixture named `name`.
pub fn mm2_fixture(name: &str) -> (Vec<u8>, Vec<u8>) {
    MM2_RECORDS
        .lines()
        .filter(|line| !line.starts_with('#'))
        .find_map(|line| match line.split(' ').collect::<Vec<_>>()[..] {
            [fixture, key, value] if fixture == name => Some((hex(key), hex(value))),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no MM2 fixture named {name}"))
}
