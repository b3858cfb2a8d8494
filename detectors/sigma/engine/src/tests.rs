use super::*;

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures");

#[test]
fn fixtures() {
    plumbline_sdk::testing::run_fixtures::<SigmaEngine>(DIR);
}

#[test]
fn the_name_slot_is_rewritten_in_place() {
    assert_eq!(detector_name(), DEFAULT_NAME);
    use plumbline_sigma::NAME_MARKER;
    let mut bytes = b"head".to_vec();
    bytes.extend_from_slice(&NAME_SLOT);
    bytes.extend_from_slice(b"tail");
    let named = plumbline_sigma::with_name(&bytes, "acme-aws.sigma").unwrap();
    assert_eq!(named.len(), bytes.len());
    let at = 4 + NAME_MARKER.len();
    assert_eq!(&named[at..at + 14], b"acme-aws.sigma");
    assert_eq!(named[at + 14], 0);
    assert!(named.ends_with(b"tail"));
    assert!(plumbline_sigma::with_name(&bytes, "Bad Name").is_err());
    assert!(plumbline_sigma::with_name(b"no slot here", "ok").is_err());
    let twice = [bytes.clone(), bytes].concat();
    assert!(plumbline_sigma::with_name(&twice, "ok").is_err());
}
