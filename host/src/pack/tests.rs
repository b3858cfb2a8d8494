//! Pack loading against real components (detectors/testing/pack-probe), real signatures.
