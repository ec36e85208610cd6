"""Primary storage: LUKS-encrypted qcow2 images made and opened with qemu, as CloudStack's KVM hosts do."""
