//! Running Kafka's Java programs the way Kafka's own scripts do (kafka-run-class.sh):
//! the same GC options, each script's default heap, jars from the testbed's cache.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context};

use crate::process::{self, Child};

/// Kafka 4 logs through log4j2, Kafka 3 through reload4j (log4j 1).
pub struct Kafka {
    classpath: String,
    log_option: String,
}

/// kafka-run-class.sh's KAFKA_JVM_PERFORMANCE_OPTS.
const PERFORMANCE_OPTS: [&str; 7] = [
    "-server",
    "-XX:+UseG1GC",
    "-XX:MaxGCPauseMillis=20",
    "-XX:InitiatingHeapOccupancyPercent=35",
    "-XX:+ExplicitGCInvokesConcurrent",
    "-XX:MaxInlineLevel=15",
    "-Djava.awt.headless=true",
];

impl Kafka {
    /// The jars of `version` (fetched by testbed/testbed if missing), logging at `level`
    /// to stdout through a config written into `dir`.
    pub fn new(testbed: &Path, version: &str, level: &str, dir: &Path) -> anyhow::Result<Self> {
        let output = Command::new(testbed)
            .args(["classpath", version])
            .output()
            .with_context(|| format!("running {} classpath {version}", testbed.display()))?;
        if !output.status.success() {
            bail!(
                "Kafka {version} jars are not available: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        let classpath = String::from_utf8(output.stdout)?.trim().to_string();
        let major: u32 = version
            .split('.')
            .next()
            .and_then(|m| m.parse().ok())
            .with_context(|| format!("Kafka version '{version}'"))?;
        let config: PathBuf = dir.join(format!("log-{version}-{level}.properties"));
        let log_option = if major >= 4 {
            std::fs::write(
                &config,
                format!(
                    "status = error\nappender.out.type = Console\nappender.out.name = OUT\n\
                     appender.out.layout.type = PatternLayout\n\
                     appender.out.layout.pattern = [%d] %p %m (%c)%n\n\
                     rootLogger.level = {level}\nrootLogger.appenderRef.out.ref = OUT\n"
                ),
            )?;
            format!("-Dlog4j2.configurationFile={}", config.display())
        } else {
            std::fs::write(
                &config,
                format!(
                    "log4j.rootLogger={level}, out\n\
                     log4j.appender.out=org.apache.log4j.ConsoleAppender\n\
                     log4j.appender.out.layout=org.apache.log4j.PatternLayout\n\
                     log4j.appender.out.layout.ConversionPattern=[%d] %p %m (%c)%n\n"
                ),
            )?;
            format!("-Dlog4j.configuration=file:{}", config.display())
        };
        Ok(Self {
            classpath,
            log_option,
        })
    }

    /// Starts `class` with `heap` options (e.g. `["-Xmx512M"]`).
    pub fn spawn(
        &self,
        name: &str,
        heap: &[&str],
        class: &str,
        args: &[String],
        log: &Path,
    ) -> anyhow::Result<Child> {
        self.spawn_in(None, name, heap, class, args, log)
    }

    /// Starts `class` inside network `namespace` (here when `None`).
    pub fn spawn_in(
        &self,
        namespace: Option<&str>,
        name: &str,
        heap: &[&str],
        class: &str,
        args: &[String],
        log: &Path,
    ) -> anyhow::Result<Child> {
        let mut java_args: Vec<String> = heap.iter().map(|s| s.to_string()).collect();
        java_args.extend(PERFORMANCE_OPTS.iter().map(|s| s.to_string()));
        java_args.push("-Duser.timezone=UTC".to_string());
        java_args.push(self.log_option.clone());
        java_args.push("-cp".to_string());
        java_args.push(self.classpath.clone());
        java_args.push(class.to_string());
        java_args.extend(args.iter().cloned());
        process::spawn_in(namespace, name, Path::new("java"), &java_args, log)
    }
}
