//! Fingerprinting: what this machine has (cpu, memory, disk, kernel, OS, network, drivers),
//! as Nomad's attribute names. Parsers take file text so they can be tested with samples.

use crate::ClientConfig;
use drivers::Driver;
use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::sync::Arc;
use structs::{
    Node, NodeCpuResources, NodeDiskResources, NodeMemoryResources, NodeNetworkResource,
    NodeReservedNetworks, NodeReservedResources, NodeResources, NODE_ELIGIBLE, NODE_STATUS_INIT,
};
use tracing::info;

/// CPU facts from `/proc/cpuinfo`.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct CpuInfo {
    pub(crate) cores: i64,
    pub(crate) mhz: Option<f64>,
    pub(crate) model: String,
}

pub(crate) fn parse_cpuinfo(text: &str) -> CpuInfo {
    let mut info = CpuInfo::default();
    for line in text.lines() {
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        match key.trim() {
            "processor" => info.cores += 1,
            "cpu MHz" if info.mhz.is_none() => info.mhz = value.trim().parse().ok(),
            "model name" if info.model.is_empty() => info.model = value.trim().to_string(),
            _ => {}
        }
    }
    info
}

/// MHz from `/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq` (kHz), the fallback when
/// `/proc/cpuinfo` has no `cpu MHz` (arm64, some VMs).
pub(crate) fn parse_cpufreq_khz(text: &str) -> Option<f64> {
    text.trim()
        .parse::<f64>()
        .ok()
        .filter(|khz| *khz > 0.0)
        .map(|khz| khz / 1000.0)
}

/// Every (interface name, IPv4 address) of this host.
fn ipv4_addrs() -> Vec<(String, Ipv4Addr)> {
    let mut out = Vec::new();
    let mut head: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs(3) stores the head of a list it allocates in `head`; it is freed
    // below with freeifaddrs and never used after.
    if unsafe { libc::getifaddrs(&mut head) } != 0 {
        return out;
    }
    let mut cur = head;
    while !cur.is_null() {
        // SAFETY: `cur` is a node of the list getifaddrs returned, valid until freeifaddrs.
        let ifa = unsafe { &*cur };
        if !ifa.ifa_addr.is_null() && !ifa.ifa_name.is_null() {
            // SAFETY: `ifa_addr` is non-null and points to a sockaddr owned by the list.
            let family = unsafe { (*ifa.ifa_addr).sa_family };
            if i32::from(family) == libc::AF_INET {
                // SAFETY: family AF_INET means the address is a sockaddr_in.
                let sin = unsafe { &*(ifa.ifa_addr as *const libc::sockaddr_in) };
                let ip = Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr));
                // SAFETY: `ifa_name` is a non-null NUL-terminated string owned by the list.
                let name = unsafe { std::ffi::CStr::from_ptr(ifa.ifa_name) };
                out.push((name.to_string_lossy().into_owned(), ip));
            }
        }
        cur = ifa.ifa_next;
    }
    // SAFETY: `head` came from a successful getifaddrs and is freed exactly once.
    unsafe { libc::freeifaddrs(head) };
    out
}

/// The first IPv4 address of interface `name` (`network_interface`).
pub(crate) fn interface_ipv4(name: &str) -> Option<Ipv4Addr> {
    ipv4_addrs()
        .into_iter()
        .find_map(|(n, ip)| (n == name).then_some(ip))
}

/// `MemTotal` from `/proc/meminfo`, in bytes.
pub(crate) fn parse_meminfo(text: &str) -> Option<i64> {
    text.lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<i64>().ok())
        .map(|kb| kb * 1024)
}

/// `(NAME, VERSION_ID)` from `/etc/os-release`.
pub(crate) fn parse_os_release(text: &str) -> (String, String) {
    let get = |key: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{key}=")))
            .map(|v| v.trim().trim_matches('"').to_string())
            .unwrap_or_default()
    };
    let id = get("ID");
    (
        if id.is_empty() { get("NAME") } else { id },
        get("VERSION_ID"),
    )
}

fn uname() -> (String, String, String) {
    // SAFETY: utsname is plain data; uname(2) fills it and the fields are NUL-terminated.
    let mut u: libc::utsname = unsafe { std::mem::zeroed() };
    // SAFETY: `u` is a valid, writable utsname.
    if unsafe { libc::uname(&mut u) } != 0 {
        return ("linux".into(), String::new(), String::new());
    }
    let field = |f: &[libc::c_char]| -> String {
        let bytes: Vec<u8> = f
            .iter()
            .take_while(|c| **c != 0)
            .map(|c| *c as u8)
            .collect();
        String::from_utf8_lossy(&bytes).into_owned()
    };
    (
        field(&u.sysname).to_lowercase(),
        field(&u.release),
        field(&u.machine),
    )
}

fn disk(path: &std::path::Path) -> (i64, i64) {
    let Ok(c) = std::ffi::CString::new(path.as_os_str().to_string_lossy().as_bytes()) else {
        return (0, 0);
    };
    // SAFETY: statvfs is plain data filled by statvfs(3) for a valid NUL-terminated path.
    let mut s: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is a valid C string and `s` is writable.
    if unsafe { libc::statvfs(c.as_ptr(), &mut s) } != 0 {
        return (0, 0);
    }
    let frsize = s.f_frsize as i64;
    (s.f_blocks as i64 * frsize, s.f_bavail as i64 * frsize)
}

/// Go's names for machine architectures.
fn go_arch(machine: &str) -> String {
    match machine {
        "x86_64" => "amd64".into(),
        "aarch64" => "arm64".into(),
        other => other.into(),
    }
}

/// Builds the node this client registers.
/// Every driver's latest fingerprint, with the attributes of the healthy ones merged into
/// `attrs` (and those of drivers no longer healthy taken out).
pub(crate) fn driver_fingerprints(
    drivers: &BTreeMap<&'static str, Arc<dyn Driver>>,
    attrs: &mut BTreeMap<String, String>,
) -> BTreeMap<String, structs::DriverInfo> {
    let mut infos = BTreeMap::new();
    let now = crate::alloc_runner::now_ns();
    for (name, driver) in drivers {
        let mut info = driver.fingerprint();
        info.update_time = now;
        let prefix = format!("driver.{name}");
        attrs.retain(|k, _| k != &prefix && !k.starts_with(&format!("{prefix}.")));
        if info.detected && info.healthy {
            for (k, v) in &info.attributes {
                attrs.insert(k.clone(), v.clone());
            }
        }
        infos.insert(name.to_string(), info);
    }
    infos
}

pub(crate) fn node(
    config: &ClientConfig,
    node_id: &str,
    secret_id: &str,
    drivers: &BTreeMap<&'static str, Arc<dyn Driver>>,
) -> Node {
    let cpu = parse_cpuinfo(&std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default());
    let cores = cpu.cores.max(1);
    let mhz = cpu
        .mhz
        .or_else(|| {
            std::fs::read_to_string("/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq")
                .ok()
                .and_then(|t| parse_cpufreq_khz(&t))
        })
        .unwrap_or_else(|| {
            info!(
                "cpu frequency unknown (no \"cpu MHz\" in /proc/cpuinfo, no cpufreq); \
                 assuming 1000 MHz per core; set cpu_total_compute to override"
            );
            1000.0
        });
    // As Nomad: the frequency attribute is the per-core MHz rounded, the total is the exact
    // product rounded down (so it can differ from cores x the attribute by less than cores).
    let total_compute = config
        .cpu_total_compute
        .unwrap_or((mhz * cores as f64).floor() as i64);
    let mem_bytes =
        parse_meminfo(&std::fs::read_to_string("/proc/meminfo").unwrap_or_default()).unwrap_or(0);
    let memory_mb = config.memory_total_mb.unwrap_or(mem_bytes / (1024 * 1024));
    let (disk_total, disk_free) = disk(&config.data_dir);
    let (kernel, kernel_version, machine) = uname();
    let (os_name, os_version) =
        parse_os_release(&std::fs::read_to_string("/etc/os-release").unwrap_or_default());
    let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_default();

    let mut attrs: BTreeMap<String, String> = BTreeMap::new();
    let mut set = |k: &str, v: String| {
        attrs.insert(k.to_string(), v);
    };
    set("cpu.arch", go_arch(&machine));
    set("cpu.numcores", cores.to_string());
    set("cpu.frequency", format!("{}", mhz.round() as i64));
    set("cpu.totalcompute", total_compute.to_string());
    if !cpu.model.is_empty() {
        set("cpu.modelname", cpu.model.clone());
    }
    set("cpu.reservablecores", cores.to_string());
    set("kernel.name", kernel);
    set("kernel.version", kernel_version);
    set("kernel.arch", machine);
    set("os.name", os_name);
    set("os.version", os_version);
    set("memory.totalbytes", mem_bytes.to_string());
    set("unique.hostname", hostname);
    set("unique.network.ip-address", config.network_ip.clone());
    set(
        "unique.storage.volume",
        config.data_dir.display().to_string(),
    );
    set("unique.storage.bytestotal", disk_total.to_string());
    set("unique.storage.bytesfree", disk_free.to_string());
    set("nomad.version", structs::VERSION.to_string());
    set("nomad.advertise.address", config.http_addr.clone());
    let driver_infos = driver_fingerprints(drivers, &mut attrs);

    Node {
        id: node_id.to_string(),
        secret_id: secret_id.to_string(),
        datacenter: config.datacenter.clone(),
        name: config.node_name.clone(),
        http_addr: config.http_addr.clone(),
        attributes: attrs,
        node_resources: NodeResources {
            cpu: NodeCpuResources {
                cpu_shares: total_compute,
                total_cpu_cores: cores,
                reservable_cpu_cores: (0..cores).collect(),
            },
            memory: NodeMemoryResources { memory_mb },
            disk: NodeDiskResources {
                disk_mb: disk_free / (1024 * 1024),
            },
            networks: vec![NodeNetworkResource {
                mode: "host".into(),
                device: ipv4_addrs()
                    .into_iter()
                    .find_map(|(n, ip)| (ip.to_string() == config.network_ip).then_some(n))
                    .unwrap_or_default(),
                cidr: format!("{}/32", config.network_ip),
                ip: config.network_ip.clone(),
            }],
            min_dynamic_port: 20000,
            max_dynamic_port: 32000,
        },
        reserved_resources: NodeReservedResources {
            cpu: NodeCpuResources {
                cpu_shares: config.reserved_cpu,
                ..Default::default()
            },
            memory: NodeMemoryResources {
                memory_mb: config.reserved_memory_mb,
            },
            disk: NodeDiskResources {
                disk_mb: config.reserved_disk_mb,
            },
            networks: NodeReservedNetworks {
                reserved_host_ports: config.reserved_ports.clone(),
            },
        },
        meta: config.meta.clone(),
        node_class: config.node_class.clone(),
        node_pool: config.node_pool.clone(),
        drivers: driver_infos,
        status: NODE_STATUS_INIT.into(),
        scheduling_eligibility: NODE_ELIGIBLE.into(),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const X86: &str = "processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC 7B13\n\
cpu MHz\t\t: 2445.406\nflags\t\t: fpu vme\n\nprocessor\t: 1\nvendor_id\t: AuthenticAMD\n\
model name\t: AMD EPYC 7B13\ncpu MHz\t\t: 2445.406\n";
    /// arm64 (and some VMs): no model name, no MHz.
    const ARM: &str = "processor\t: 0\nBogoMIPS\t: 50.00\nFeatures\t: fp asimd\n\
CPU implementer\t: 0x41\n\nprocessor\t: 1\nBogoMIPS\t: 50.00\n\nprocessor\t: 2\n\nprocessor\t: 3\n";

    #[test]
    fn cpuinfo_counts_cores_and_reads_mhz() {
        let c = parse_cpuinfo(X86);
        assert_eq!((c.cores, c.model.as_str()), (2, "AMD EPYC 7B13"));
        assert_eq!(c.mhz.map(|m| m as i64), Some(2445));
        let arm = parse_cpuinfo(ARM);
        assert_eq!((arm.cores, arm.mhz, arm.model.as_str()), (4, None, ""));
        assert_eq!(
            parse_cpuinfo("\u{0}\u{1}garbage: :: x\n"),
            CpuInfo::default()
        );
        assert_eq!(parse_cpufreq_khz("2800000\n"), Some(2800.0));
        assert_eq!(parse_cpufreq_khz("n/a"), None);
        assert_eq!(parse_cpufreq_khz("0"), None);
    }

    #[test]
    fn meminfo_and_os_release() {
        assert_eq!(
            parse_meminfo("MemTotal:       24576000 kB\nMemFree: 1 kB\n"),
            Some(24_576_000 * 1024)
        );
        assert_eq!(parse_meminfo("garbage"), None);
        assert_eq!(parse_meminfo("MemTotal: lots kB"), None);
        let (name, version) =
            parse_os_release("NAME=\"Debian GNU/Linux\"\nID=debian\nVERSION_ID=\"12\"\n");
        assert_eq!((name.as_str(), version.as_str()), ("debian", "12"));
        let (name, version) = parse_os_release("NAME=\"Ubuntu\"\nID=ubuntu\nVERSION_ID=\"22.04\"");
        assert_eq!((name.as_str(), version.as_str()), ("ubuntu", "22.04"));
        assert_eq!(parse_os_release(""), (String::new(), String::new()));
    }

    #[test]
    fn loopback_interface_has_its_address() {
        assert_eq!(interface_ipv4("lo"), Some(Ipv4Addr::LOCALHOST));
        assert_eq!(interface_ipv4("no-such-if0"), None);
    }

    #[test]
    fn node_has_nomad_attributes_resources_and_drivers() {
        let dir = tempfile::tempdir().unwrap();
        let config = ClientConfig {
            node_name: "n1".into(),
            data_dir: dir.path().to_path_buf(),
            options: [("driver.raw_exec.enable".to_string(), "1".to_string())].into(),
            meta: [("rack".to_string(), "r1".to_string())].into(),
            reserved_cpu: 100,
            reserved_memory_mb: 256,
            reserved_ports: "22,80".into(),
            memory_total_mb: Some(2048),
            ..Default::default()
        };
        let drivers = drivers::catalog(&config.options);
        let n = node(&config, "id", "secret", &drivers);
        for key in [
            "cpu.arch",
            "cpu.numcores",
            "cpu.frequency",
            "cpu.totalcompute",
            "cpu.reservablecores",
            "kernel.name",
            "kernel.version",
            "kernel.arch",
            "os.name",
            "memory.totalbytes",
            "unique.hostname",
            "unique.network.ip-address",
            "unique.storage.volume",
            "unique.storage.bytestotal",
            "unique.storage.bytesfree",
            "driver.raw_exec",
            "driver.mock",
            "nomad.version",
            "nomad.advertise.address",
        ] {
            assert!(n.attributes.contains_key(key), "missing {key}");
        }
        assert_eq!(n.attributes["kernel.name"], "linux");
        assert_eq!(n.attributes["unique.network.ip-address"], "127.0.0.1");
        assert_eq!(n.attributes["nomad.version"], structs::VERSION);
        let cores: i64 = n.attributes["cpu.numcores"].parse().unwrap();
        let mhz: i64 = n.attributes["cpu.frequency"].parse().unwrap();
        let total: i64 = n.attributes["cpu.totalcompute"].parse().unwrap();
        assert_eq!(n.node_resources.cpu.cpu_shares, total);
        // The total is the exact product; the attribute is rounded per core.
        assert!(
            (total - cores * mhz).abs() <= cores,
            "{total} vs {cores} x {mhz}"
        );
        assert_eq!(n.node_resources.memory.memory_mb, 2048);
        assert_eq!(n.node_resources.networks[0].ip, "127.0.0.1");
        assert_eq!(n.node_resources.networks[0].device, "lo");
        assert_eq!(
            (
                n.node_resources.min_dynamic_port,
                n.node_resources.max_dynamic_port
            ),
            (20000, 32000)
        );
        assert_eq!(n.reserved_resources.cpu.cpu_shares, 100);
        assert_eq!(n.reserved_resources.memory.memory_mb, 256);
        assert_eq!(n.reserved_resources.networks.reserved_host_ports, "22,80");
        assert!(n.drivers["raw_exec"].healthy && n.drivers["mock"].detected);
        assert_eq!((n.id.as_str(), n.name.as_str()), ("id", "n1"));
        assert_eq!(n.meta["rack"], "r1");

        // raw_exec disabled: not detected, no attribute; a cpu override wins.
        let config = ClientConfig {
            options: BTreeMap::new(),
            cpu_total_compute: Some(1234),
            ..config
        };
        let n = node(&config, "id", "secret", &drivers::catalog(&config.options));
        assert!(!n.drivers["raw_exec"].detected);
        assert!(!n.attributes.contains_key("driver.raw_exec"));
        assert_eq!(n.node_resources.cpu.cpu_shares, 1234);
        assert_eq!(n.attributes["cpu.totalcompute"], "1234");
    }
}
