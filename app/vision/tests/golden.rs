//! Parity with transformers 5.23's `Qwen2VLImageProcessor` (torchvision backend, CPU)
//! on the images in `tests/golden/` (regenerate with `tests/golden/make_golden.py`).
//!
//! Expected result (QWEN2VL.md §8): bit-identical resize output and pixel_values.

use std::path::{Path, PathBuf};

use lumine_vision::{
    PixelValues, PreprocessConfig, Preprocessor, RgbImage, preprocess, resize_bicubic_u8,
    smart_resize,
};
use serde::Deserialize;
use sha2::{Digest, Sha256};

#[derive(Debug, Deserialize)]
struct Golden {
    name: String,
    png: String,
    width: u32,
    height: u32,
    config: PreprocessConfig,
    resized_height: u32,
    resized_width: u32,
    image_grid_thw: [i64; 3],
    num_image_tokens: usize,
    resized_u8_sha256: String,
    pixel_values_shape: [usize; 2],
    pixel_values_sha256: String,
    first_values: Vec<f32>,
    sample_stride: usize,
    sampled_values: Vec<f32>,
}

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

fn load_cases() -> Vec<(Golden, RgbImage)> {
    let mut jsons: Vec<PathBuf> = std::fs::read_dir(golden_dir())
        .expect("tests/golden exists")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    jsons.sort();
    assert!(jsons.len() >= 5, "golden files missing: {jsons:?}");
    jsons
        .into_iter()
        .map(|path| {
            let text = std::fs::read_to_string(&path).expect("read json");
            let golden: Golden = serde_json::from_str(&text).expect("parse json");
            let decoded = image::open(golden_dir().join(&golden.png))
                .expect("decode png")
                .into_rgb8();
            let (w, h) = decoded.dimensions();
            assert_eq!((w, h), (golden.width, golden.height), "{}", golden.name);
            let img = RgbImage::new(w, h, decoded.into_raw()).expect("rgb8 buffer");
            (golden, img)
        })
        .collect()
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn f32_le_bytes(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

/// Max |Δ| over the values the JSON samples, and how many differ.
fn sampled_diff(g: &Golden, pv: &PixelValues) -> (f32, usize) {
    let pairs = g.first_values.iter().zip(&pv.data).chain(
        g.sampled_values
            .iter()
            .zip(pv.data.iter().step_by(g.sample_stride)),
    );
    pairs.fold((0.0f32, 0usize), |(max, n), (&want, &got)| {
        let d = (want - got).abs();
        (max.max(d), n + usize::from(want.to_bits() != got.to_bits()))
    })
}

fn check_pixel_values(g: &Golden, pv: &PixelValues, how: &str) -> bool {
    let shape_ok = [pv.rows, pv.cols] == g.pixel_values_shape
        && pv.grid_thw == g.image_grid_thw
        && pv.num_image_tokens() == g.num_image_tokens;
    let hash = sha256_hex(&f32_le_bytes(&pv.data));
    if shape_ok && hash == g.pixel_values_sha256 {
        return true;
    }
    let (max, n) = sampled_diff(g, pv);
    eprintln!(
        "{} ({how}): pixel_values mismatch: shape {:?} grid {:?} (want {:?} {:?}), sha256 {hash} \
         (want {}); sampled values: max |Δ| = {max:e}, {n} differ",
        g.name,
        [pv.rows, pv.cols],
        pv.grid_thw,
        g.pixel_values_shape,
        g.image_grid_thw,
        g.pixel_values_sha256
    );
    false
}

#[test]
fn smart_resize_matches_transformers() {
    for (g, _) in load_cases() {
        assert_eq!(
            smart_resize(g.height, g.width, &g.config),
            Ok((g.resized_height, g.resized_width)),
            "{}",
            g.name
        );
        let [t, gh, gw] = g.image_grid_thw;
        assert_eq!(t, 1);
        assert_eq!(gh * 14, i64::from(g.resized_height), "{}", g.name);
        assert_eq!(gw * 14, i64::from(g.resized_width), "{}", g.name);
    }
}

#[test]
fn resize_u8_matches_torchvision() {
    let mut failed = Vec::new();
    for (g, img) in load_cases() {
        let out = resize_bicubic_u8(img.as_ref_image(), g.resized_width, g.resized_height);
        let hash = sha256_hex(&out.data);
        if hash != g.resized_u8_sha256 {
            eprintln!(
                "{}: resized uint8 sha256 {hash}, want {}",
                g.name, g.resized_u8_sha256
            );
            failed.push(g.name);
        }
    }
    assert!(failed.is_empty(), "resize mismatches: {failed:?}");
}

#[test]
fn pixel_values_match_transformers() {
    let mut failed = Vec::new();
    // One reused Preprocessor per config, fed the cases in turn (sizes change
    // between calls), plus the allocating free function.
    let mut reused: Vec<(PreprocessConfig, Preprocessor)> = Vec::new();
    let mut out = PixelValues::default();
    for (g, img) in load_cases() {
        let pv = preprocess(img.as_ref_image(), &g.config).expect("preprocess");
        if !check_pixel_values(&g, &pv, "preprocess") {
            failed.push(g.name.clone());
        }
        let pre = match reused.iter_mut().position(|(c, _)| *c == g.config) {
            Some(i) => &mut reused[i].1,
            None => {
                let pre = Preprocessor::new(g.config.clone()).expect("config");
                reused.push((g.config.clone(), pre));
                &mut reused.last_mut().expect("just pushed").1
            }
        };
        pre.preprocess_into(&mut out, img.as_ref_image())
            .expect("preprocess_into");
        if !check_pixel_values(&g, &out, "Preprocessor::preprocess_into") {
            failed.push(format!("{} (reused)", g.name));
        }
    }
    assert!(failed.is_empty(), "pixel_values mismatches: {failed:?}");
}
