//! Property tests: smart_resize's invariants and the resize's identity case.

use lumine_vision::{
    PreprocessConfig, PreprocessError, RgbImage, preprocess, resize_bicubic_u8, smart_resize,
};
use proptest::prelude::*;

/// The 7B config and transformers' class default (`max_pixels` 1003520).
fn configs() -> [PreprocessConfig; 2] {
    [
        PreprocessConfig::default(),
        PreprocessConfig {
            max_pixels: 1_003_520,
            ..PreprocessConfig::default()
        },
    ]
}

fn aspect_ok(h: u32, w: u32) -> bool {
    f64::from(h.max(w)) / f64::from(h.min(w)) <= 200.0
}

proptest! {
    #[test]
    fn smart_resize_multiple_of_28_within_bounds(h in 1u32..20_000, w in 1u32..20_000) {
        prop_assume!(aspect_ok(h, w));
        for cfg in configs() {
            let (rh, rw) = smart_resize(h, w, &cfg).unwrap();
            prop_assert_eq!(rh % 28, 0);
            prop_assert_eq!(rw % 28, 0);
            prop_assert!(rh >= 28 && rw >= 28);
            let area = u64::from(rh) * u64::from(rw);
            prop_assert!(area >= cfg.min_pixels, "{}x{} -> {}x{}", h, w, rh, rw);
            prop_assert!(area <= cfg.max_pixels, "{}x{} -> {}x{}", h, w, rh, rw);
        }
    }

    #[test]
    fn smart_resize_rejects_extreme_aspect(short in 1u32..100, extra in 1u32..1000) {
        let long = short * 200 + extra;
        let cfg = PreprocessConfig::default();
        prop_assert!(
            matches!(smart_resize(short, long, &cfg), Err(PreprocessError::AspectRatio { .. })),
            "aspect ratio error expected"
        );
        prop_assert!(
            matches!(smart_resize(long, short, &cfg), Err(PreprocessError::AspectRatio { .. })),
            "aspect ratio error expected"
        );
    }

    #[test]
    fn resize_to_same_size_is_identity(
        (w, h, data) in (1u32..48, 1u32..48).prop_flat_map(|(w, h)| {
            (Just(w), Just(h), proptest::collection::vec(any::<u8>(), (w * h * 3) as usize))
        })
    ) {
        let src = RgbImage::new(w, h, data).unwrap();
        prop_assert_eq!(resize_bicubic_u8(src.as_ref_image(), w, h), src);
    }

    #[test]
    fn preprocess_shape_follows_smart_resize(w in 1u32..200, h in 1u32..200, v in any::<u8>()) {
        prop_assume!(aspect_ok(h, w));
        let cfg = PreprocessConfig::default();
        let img = RgbImage::new(w, h, vec![v; (w * h * 3) as usize]).unwrap();
        let pv = preprocess(img.as_ref_image(), &cfg).unwrap();
        let (rh, rw) = smart_resize(h, w, &cfg).unwrap();
        prop_assert_eq!(pv.grid_thw, [1, i64::from(rh / 14), i64::from(rw / 14)]);
        prop_assert_eq!(pv.rows, (rh / 14 * (rw / 14)) as usize);
        prop_assert_eq!(pv.cols, 1176);
        prop_assert_eq!(pv.data.len(), pv.rows * 1176);
        prop_assert_eq!(pv.num_image_tokens() * 4, pv.rows);
    }
}
