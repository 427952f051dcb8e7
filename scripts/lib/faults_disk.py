"""A small tmpfs for a relay's or client's directory, filled to the last byte on demand;
unmounted on exit. Skips (never fails) where mounting is not permitted."""
import os
import shutil
import subprocess


class Tmpfs:
    """Mounts a tmpfs of SIZE over DIRECTORY with its contents; on exit the contents go
    back to an ordinary directory at the same path."""

    def __init__(self, directory, size):
        self.directory, self.size = directory, size
        self.filler = os.path.join(directory, "faults-filler")
        self.mounted, self.skipped = False, None

    def __enter__(self):
        if os.geteuid() != 0:
            self.skipped = "not root"
            return self
        saved = self.directory + ".saved"
        os.rename(self.directory, saved)
        os.mkdir(self.directory, 0o700)
        result = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={self.size},mode=0700", "tmpfs", self.directory],
                                capture_output=True, text=True, timeout=30)
        if result.returncode != 0:
            os.rmdir(self.directory)
            os.rename(saved, self.directory)
            self.skipped = f"mount not permitted ({result.stderr.strip()[:80]})"
            return self
        self.mounted = True
        shutil.copytree(saved, self.directory, symlinks=True, dirs_exist_ok=True)
        shutil.rmtree(saved)
        return self

    def __exit__(self, *exc):
        if self.mounted:
            self.free()
            saved = self.directory + ".saved"
            shutil.copytree(self.directory, saved, symlinks=True)
            subprocess.run(["umount", "-l", self.directory], capture_output=True, timeout=30)
            self.mounted = False
            os.rmdir(self.directory)
            os.rename(saved, self.directory)
        return False

    def fill(self):
        """Writes a filler file until the file system refuses (ENOSPC); returns its size."""
        written = 0
        with open(self.filler, "ab", buffering=0) as file:
            for size in (1 << 16, 4096, 512):
                try:
                    while written < (1 << 34):
                        written += file.write(b"\0" * size) or 0
                except OSError:
                    pass
        return written

    def free(self):
        if os.path.exists(self.filler):
            os.unlink(self.filler)
