use std::time::Instant;
fn main() {
    let text = std::fs::read_to_string("corpus/repros/U3-stale.repro").unwrap();
    let s = e4fuzz::scenario::repro::decode(&text).unwrap();
    let mut total = 0.0;
    for i in 0..300u64 {
        let mut setup = s.setup.clone();
        setup[0].writes[0].2 = (i % 250) as u8; // a new key each time
        setup[0].writes[1].2 = (i / 250) as u8;
        let t = Instant::now();
        let _ = e4fuzz::harness::template::template(&s.geometry, &setup).unwrap();
        total += t.elapsed().as_secs_f64();
    }
    println!(
        "uncached template, {} writes: {:.2} ms",
        s.setup[0].writes.len(),
        total * 1000.0 / 300.0
    );
}
