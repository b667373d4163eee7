//! Preprocessing throughput on the product's frame size (1280×720 → 1288×728,
//! 4784 patches; 1 and 2 threads, AVX2 kernels and portable loops) and on a
//! small odd-sized frame (333×257 → 336×252).
//!
//! `cargo bench -p lumine-vision --bench preprocess`
//!
//! Compare with `benches/transformers_preprocess.py` (transformers 5.23's
//! `Qwen2VLImageProcessor` on the same 1280×720 golden frame).

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use lumine_vision::{
    PixelValues, PreprocessConfig, Preprocessor, Resizer, RgbImage, RgbImageRef, smart_resize,
};

/// A deterministic frame: gradients plus xorshift noise.
fn frame(width: u32, height: u32) -> RgbImage {
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    let mut data = Vec::with_capacity(width as usize * height as usize * 3);
    for y in 0..height {
        for x in 0..width {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let n = (state >> 59) as u32;
            data.push(((x * 255 / width + n) % 256) as u8);
            data.push(((y * 255 / height + n) % 256) as u8);
            data.push((((x + y) * 3 + n) % 256) as u8);
        }
    }
    RgbImage::new(width, height, data).expect("valid frame")
}

fn bench_sizes(c: &mut Criterion) {
    let config = PreprocessConfig::default();
    for (w, h) in [(1280u32, 720u32), (333, 257)] {
        let img = frame(w, h);
        let src = RgbImageRef::from(&img);

        let mut pre = Preprocessor::new(config.clone()).expect("config");
        let mut out = PixelValues::default();
        c.bench_function(&format!("preprocess_into {w}x{h}"), |b| {
            b.iter(|| {
                pre.preprocess_into(&mut out, black_box(src))
                    .expect("preprocess");
                black_box(&out.data);
            });
        });

        if w == 1280 {
            let mut pre2 = Preprocessor::new(config.clone())
                .expect("config")
                .with_threads(2);
            c.bench_function(&format!("preprocess_into {w}x{h} (2 threads)"), |b| {
                b.iter(|| {
                    pre2.preprocess_into(&mut out, black_box(src))
                        .expect("preprocess");
                    black_box(&out.data);
                });
            });
            // The portable loops, as on a CPU without AVX2 + FMA.
            let mut portable = Preprocessor::new(config.clone())
                .expect("config")
                .with_simd(false);
            c.bench_function(&format!("preprocess_into {w}x{h} (portable)"), |b| {
                b.iter(|| {
                    portable
                        .preprocess_into(&mut out, black_box(src))
                        .expect("preprocess");
                    black_box(&out.data);
                });
            });
        }

        let (rh, rw) = smart_resize(h, w, &config).expect("size");
        let mut resizer = Resizer::new();
        let mut dst = RgbImage::default();
        c.bench_function(&format!("resize {w}x{h} -> {rw}x{rh}"), |b| {
            b.iter(|| {
                resizer
                    .resize_into(black_box(src), rw, rh, &mut dst)
                    .expect("resize");
                black_box(&dst.data);
            });
        });
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(50);
    targets = bench_sizes
}
criterion_main!(benches);
