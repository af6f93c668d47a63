use e4fuzz::fs::{Fs, MountOpts};
use e4fuzz::harness::{pattern, template};
use e4fuzz::scenario::{Op, Scenario};
fn main() {
    let text = std::fs::read_to_string(std::env::args().nth(1).unwrap()).unwrap();
    let s = Scenario::parse_repro(&text).unwrap();
    let t = template::template(&s.geometry, &s.setup).unwrap();
    let mut fs = Fs::mount(t, MountOpts::default()).unwrap();
    let ino = fs.resolve("/f1").unwrap();
    let show = |fs: &mut Fs, what: &str| {
        let r = fs.read_file(ino, 42476, 8).unwrap();
        println!("{what}: {:?}", r);
    };
    // run thread 3 ops until the read
    let order = [(1, 0), (3, 0), (2, 0), (2, 1), (3, 1), (1, 1), (3, 2)];
    for (t, i) in order {
        let op = &s.threads[t][i];
        let r = e4fuzz::harness::exec::dispatch(&mut fs, op);
        println!("{op:?} -> {:?}", r.map(|r| r.map(|v| v.len())));
    }
    show(&mut fs, "end");
    let r = fs.read_file(ino, 24576, 31581).unwrap();
    println!("{:?}", &r[42476 - 24576..42476 - 24576 + 8]);
    let _ = pattern::DATA_MAGIC;
    let _ = Op::Sync;
}
