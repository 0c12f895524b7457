// Included by the shim's fork hooks and by the stub, which are built apart.

/// The text of a jump that a call decides: keeps the six argument registers and rax (the vector
/// count of a variadic call) around `call {ask}` (after `$before`), then jumps to the address it
/// returned with no frame left behind, since a vfork child returns on this stack. Seven pushes
/// keep the call's stack aligned.
macro_rules! ask_then_jump {
    ($before:literal) => {
        concat!(
            "push rdi\n", "push rsi\n", "push rdx\n", "push rcx\n", "push r8\n", "push r9\n",
            "push rax\n", $before, "call {ask}\n", "mov r11, rax\n", "pop rax\n", "pop r9\n",
            "pop r8\n", "pop rcx\n", "pop rdx\n", "pop rsi\n", "pop rdi\n", "jmp r11"
        )
    };
}
