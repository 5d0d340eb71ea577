package main

import "syscall"

// childAttr puts a child in its own process group and has the kernel
// SIGKILL it if the demo dies without cleaning up (kill -9).
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
