//! Just enough ELF to tell whether the dynamic loader (which does the preloading) runs a
//! program: the header and the program headers, read from the file.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;

const PT_DYNAMIC: u32 = 2;
const PT_INTERP: u32 = 3;

#[derive(Debug, PartialEq, Eq)]
pub struct Elf {
    pub bits: u8,
    pub machine: u16,
    /// PT_INTERP: the dynamic loader the kernel starts for it. None: statically linked.
    pub interp: Option<String>,
    /// PT_DYNAMIC: it has a dynamic section (a static-pie has one but no loader).
    pub dynamic: bool,
}

/// Reads the ELF headers of `path`; `Ok(None)` if it is not an ELF file.
pub fn read(path: &Path) -> io::Result<Option<Elf>> {
    let file = File::open(path)?;
    let mut ident = [0u8; 64];
    let n = read_at_most(&file, &mut ident, 0)?;
    if n < 52 || &ident[..4] != b"\x7fELF" {
        return Ok(None);
    }
    let (bits, little) = (ident[4], ident[5] == 1);
    if !(bits == 1 || bits == 2) || n < 64 && bits == 2 {
        return Ok(None);
    }
    let r = Reader { little };
    let wide = bits == 2;
    let machine = r.u16(&ident, 18);
    let (phoff, phentsize, phnum) = if wide {
        (r.u64(&ident, 32), r.u16(&ident, 54), r.u16(&ident, 56))
    } else {
        (
            u64::from(r.u32(&ident, 28)),
            r.u16(&ident, 42),
            r.u16(&ident, 44),
        )
    };
    let mut elf = Elf {
        bits: if wide { 64 } else { 32 },
        machine,
        interp: None,
        dynamic: false,
    };
    let mut ph = vec![0u8; usize::from(phentsize)];
    for i in 0..u64::from(phnum) {
        if ph.len() < if wide { 40 } else { 32 } {
            break; // a header too short to hold the fields read below
        }
        file.read_exact_at(&mut ph, phoff + i * u64::from(phentsize))?;
        let (offset, size) = if wide {
            (r.u64(&ph, 8), r.u64(&ph, 32))
        } else {
            (u64::from(r.u32(&ph, 4)), u64::from(r.u32(&ph, 16)))
        };
        match r.u32(&ph, 0) {
            PT_DYNAMIC => elf.dynamic = true,
            PT_INTERP => {
                let mut name = vec![0u8; size.min(4096) as usize];
                file.read_exact_at(&mut name, offset)?;
                let end = name.iter().position(|&b| b == 0).unwrap_or(name.len());
                elf.interp = Some(String::from_utf8_lossy(&name[..end]).into_owned());
            }
            _ => {}
        }
    }
    Ok(Some(elf))
}

fn read_at_most(file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match file.read_at(&mut buf[n..], offset + n as u64)? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

struct Reader {
    little: bool,
}

impl Reader {
    fn bytes<const N: usize>(&self, b: &[u8], at: usize) -> [u8; N] {
        let mut a: [u8; N] = b[at..at + N].try_into().expect("slice of N bytes");
        if !self.little {
            a.reverse();
        }
        a
    }
    fn u16(&self, b: &[u8], at: usize) -> u16 {
        u16::from_le_bytes(self.bytes(b, at))
    }
    fn u32(&self, b: &[u8], at: usize) -> u32 {
        u32::from_le_bytes(self.bytes(b, at))
    }
    fn u64(&self, b: &[u8], at: usize) -> u64 {
        u64::from_le_bytes(self.bytes(b, at))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_test_binary_is_dynamic_and_a_text_file_is_not_elf() {
        let me = read(&std::env::current_exe().unwrap()).unwrap().unwrap();
        assert_eq!(u32::from(me.bits), usize::BITS);
        assert!(me.dynamic);
        assert!(me.interp.unwrap().contains("ld-linux"));
        let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/elf.rs");
        assert_eq!(read(&source).unwrap(), None);
    }
}
