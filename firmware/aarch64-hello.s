/*
 * aarch64-hello: bare-metal demo firmware for machinedesc's seed board.
 *
 * Runs unchanged on QEMU's `-M virt -cpu cortex-a72 -smp 2 -kernel` and on
 * the seed's example machine built over QMP (a cpu-cluster of two
 * cortex-a72-arm-cpu), because both share:
 *   RAM    0x40000000  (entry point; rvbar on the QMP-built board)
 *   PL011  0x09000000
 *
 * CPU k (MPIDR Aff0 = k, k < NCPUS) waits for its turn (a word in RAM),
 * prints "hello from cpu k" and passes the turn on.  CPU 0 also brings the
 * others up with PSCI CPU_ON and, once every CPU has printed, powers the
 * machine off with PSCI SYSTEM_OFF (when built with POWEROFF=1).  PSCI calls
 * try the HVC conduit first, then SMC.
 *
 * Works with either bring-up path:
 *  - PSCI: secondaries start powered off (start-powered-off=true) and
 *    psci-conduit=2 (HVC, as on -M virt) or 1 (SMC, as on virt with
 *    virtualization=on);
 *  - spin table: every CPU starts running at the entry point; CPU_ON then
 *    returns ALREADY_ON, or, with no PSCI at all, the HVC/SMC traps into
 *    the vector table below, which returns NOT_SUPPORTED.  Without PSCI there is
 *    no power-off: CPU 0 parks.
 * EL-agnostic (EL3, EL2 or EL1 at entry), MMU off, no stack.
 */

    .ifndef NCPUS
    .equ    NCPUS, 2
    .endif
    .ifndef POWEROFF
    .equ    POWEROFF, 1
    .endif

    .equ    UART_BASE, 0x09000000
    .equ    UART_FR, 0x18
    .equ    UART_CR, 0x30
    .equ    UART_FR_TXFF, 0x20
    .equ    UART_CR_EN, 0x301           /* UARTEN | TXE | RXE */
    .equ    PSCI_CPU_ON64, 0xc4000003
    .equ    PSCI_SYSTEM_OFF, 0x84000008

    .section .text.start, "ax"
    .globl  _start
_start:
    mrs     x19, mpidr_el1
    and     x19, x19, #0xff             /* Aff0 = CPU number */

    /* vector table at the current EL, to survive an HVC without PSCI */
    adr     x1, vectors
    mrs     x0, CurrentEL
    lsr     x0, x0, #2
    cmp     x0, #3
    b.ne    1f
    msr     vbar_el3, x1
    b       2f
1:  cmp     x0, #2
    b.ne    1f
    msr     vbar_el2, x1
    b       2f
1:  msr     vbar_el1, x1
2:  isb

    cmp     x19, #NCPUS
    b.hs    park

    adr     x20, turn
1:  ldr     w0, [x20]
    cmp     w0, w19
    b.eq    2f
    yield
    b       1b
2:  dmb     ish

    cbnz    x19, 3f
    ldr     x1, =UART_BASE
    mov     w0, #UART_CR_EN
    str     w0, [x1, #UART_CR]
3:  adr     x0, msg_cpu
    bl      puts
    add     w0, w19, #'0'               /* CPU numbers 0..9 */
    bl      putc
    mov     w0, #'\n'
    bl      putc

    dmb     ish
    add     w0, w19, #1
    str     w0, [x20]                   /* next CPU's turn */
    dsb     ish
    sev
    cbnz    x19, park

    /* CPU 0: power on the others (errors such as ALREADY_ON are fine) */
    mov     x21, #1
1:  cmp     x21, #NCPUS
    b.hs    2f
    ldr     x0, =PSCI_CPU_ON64
    mov     x1, x21                     /* target MPIDR: Aff0 = k */
    adr     x2, _start
    mov     x3, #0
    bl      psci_call
    add     x21, x21, #1
    b       1b

    /* wait for every CPU, then power off */
2:  ldr     w0, [x20]
    cmp     w0, #NCPUS
    b.eq    3f
    yield
    b       2b
3:
    .if     POWEROFF
    ldr     x0, =PSCI_SYSTEM_OFF
    bl      psci_call
    .endif
park:
    wfe
    b       park

/*
 * psci_call: x0 = function id, x1-x3 = arguments; returns x0.
 * Tries the HVC conduit, then SMC when HVC came back NOT_SUPPORTED (-1):
 * QEMU's built-in PSCI answers on the conduit the CPU's psci-conduit
 * property names; a conduit nobody serves traps into sync_handler, which
 * returns -1.  Clobbers x4-x7, x10, x11.
 */
psci_call:
    mov     x4, x0
    mov     x5, x1
    mov     x6, x2
    mov     x7, x3
    hvc     #0
    cmn     x0, #1
    b.ne    1f
    mov     x0, x4
    mov     x1, x5
    mov     x2, x6
    mov     x3, x7
    smc     #0
1:  ret

/* puts: x0 = NUL-terminated string; clobbers x0-x3, x9 */
puts:
    mov     x9, x30
    mov     x2, x0
1:  ldrb    w0, [x2], #1
    cbz     w0, 2f
    bl      putc
    b       1b
2:  ret     x9

/* putc: w0 = byte; clobbers x1, x3 */
putc:
    ldr     x1, =UART_BASE
1:  ldr     w3, [x1, #UART_FR]
    tst     w3, #UART_FR_TXFF
    b.ne    1b
    str     w0, [x1]
    ret

/*
 * Synchronous exception from the current EL.  Expected only from a PSCI
 * conduit that QEMU does not serve: an UNDEF HVC/SMC (EC 0x00, ELR at the
 * instruction: step over it) or an HVC/SMC taken at this EL (EC 0x16/0x17,
 * ELR already after it).  Return NOT_SUPPORTED (-1) in x0.  Anything else
 * parks the CPU.
 */
sync_handler:
    mrs     x10, CurrentEL
    lsr     x10, x10, #2
    cmp     x10, #3
    b.eq    3f
    cmp     x10, #2
    b.eq    2f
    mrs     x11, esr_el1
    lsr     x11, x11, #26
    cbnz    x11, 8f
    mrs     x11, elr_el1
    add     x11, x11, #4
    msr     elr_el1, x11
    b       9f
2:  mrs     x11, esr_el2
    lsr     x11, x11, #26
    cbnz    x11, 8f
    mrs     x11, elr_el2
    add     x11, x11, #4
    msr     elr_el2, x11
    b       9f
3:  mrs     x11, esr_el3
    lsr     x11, x11, #26
    cbnz    x11, 8f
    mrs     x11, elr_el3
    add     x11, x11, #4
    msr     elr_el3, x11
    b       9f
8:  cmp     x11, #0x16                  /* HVC from AArch64 */
    b.eq    9f
    cmp     x11, #0x17                  /* SMC from AArch64 */
    b.ne    park
9:  mov     x0, #-1
    eret

    .ltorg

    .balign 2048
vectors:
    .rept   4                           /* current EL with SP0 */
    b       sync_handler
    .balign 0x80
    .endr
    .rept   4                           /* current EL with SPx */
    b       sync_handler
    .balign 0x80
    .endr
    .rept   8                           /* lower ELs: not used */
    b       park
    .balign 0x80
    .endr

    .section .rodata
msg_cpu:
    .asciz  "hello from cpu "

    /*
     * .data, not .bss: the ELF loader re-copies initialised data on every
     * system reset, so a reset machine starts again with turn == 0.
     */
    .section .data
    .balign 8
turn:
    .word   0
