//! `embedkit completions SHELL` and `embedkit man`: generated from the clap definitions,
//! so they always match the commands.

use std::path::{Path, PathBuf};

use clap::{Args, CommandFactory};
use clap_complete::Shell;

#[derive(Args, Debug)]
pub struct CompletionsArgs {
    /// The shell: bash, zsh, fish, elvish or powershell.
    pub shell: Shell,
}

#[derive(Args, Debug)]
pub struct ManArgs {
    /// Write embedkit.1 and one page per command (embedkit-embed.1, ...) into DIR instead
    /// of printing embedkit.1.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

pub fn completions<C: CommandFactory>(args: CompletionsArgs) -> anyhow::Result<()> {
    let mut cmd = C::command();
    clap_complete::generate(args.shell, &mut cmd, "embedkit", &mut std::io::stdout());
    Ok(())
}

pub fn man<C: CommandFactory>(args: ManArgs) -> anyhow::Result<()> {
    let cmd = C::command();
    match args.dir {
        None => {
            let mut page = Vec::new();
            clap_mangen::Man::new(cmd).render(&mut page)?;
            std::io::Write::write_all(&mut std::io::stdout(), &page)?;
        }
        Some(dir) => {
            std::fs::create_dir_all(&dir)?;
            write_page(&dir, "embedkit", cmd.clone())?;
            for sub in cmd.get_subcommands() {
                let name = format!("embedkit-{}", sub.get_name());
                let page = sub.clone().display_name(name.clone());
                write_page(
                    &dir,
                    &name,
                    page.bin_name(format!("embedkit {}", sub.get_name())),
                )?;
            }
        }
    }
    Ok(())
}

/// One page, written under a temporary name and renamed: never a half-written page.
fn write_page(dir: &Path, name: &str, cmd: clap::Command) -> anyhow::Result<()> {
    let mut page = Vec::new();
    clap_mangen::Man::new(cmd).title(name).render(&mut page)?;
    let dest = dir.join(format!("{name}.1"));
    let tmp = dir.join(format!(".{name}.1.{}.partial", std::process::id()));
    std::fs::write(&tmp, &page)
        .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, &dest).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        anyhow::anyhow!("cannot move {} into place: {e}", dest.display())
    })
}
