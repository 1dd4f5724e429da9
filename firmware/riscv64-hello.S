/*
 * riscv64-hello: bare-metal M-mode demo firmware for machinedesc.
 *
 * Runs unchanged on QEMU's `-M virt` (-bios) and on the machine that
 * boards/soc.yaml builds over QMP, because both share this memory map:
 *   RAM        0x80000000  (entry point, every hart's reset vector)
 *   ns16550    0x10000000  (regshift 0)
 *   mtimer     0x02004000  (mtimecmp[hart] = +8*hart, mtime = 0x0200bff8)
 *   sifive_test 0x00100000 (write 0x5555 = power off)
 *
 * Hart k (k < NHARTS) waits for its turn (a word in RAM), prints
 * "hello from hart k" and passes the turn to hart k+1.  When the last hart
 * is done, hart 0 arms its machine timer; the M-mode trap handler prints
 * "hello from timer interrupt" and powers the machine off (or, when built
 * with POWEROFF=0, parks).  Harts >= NHARTS park.  No IPIs, no a0/a1, no
 * stack.
 */

#ifndef NHARTS
#define NHARTS 2
#endif
#ifndef POWEROFF
#define POWEROFF 1
#endif
#ifndef TIMER_DELTA
#define TIMER_DELTA 10000       /* 1 ms at the 10 MHz timebase of virt */
#endif

#define UART_BASE     0x10000000
#define UART_LSR      5
#define UART_LSR_THRE 0x20
#define TEST_BASE     0x00100000
#define TEST_POWEROFF 0x5555
#define MTIMECMP_BASE 0x02004000
#define MTIME_ADDR    0x0200bff8
#define MIE_MTIE      (1 << 7)
#define MSTATUS_MIE   (1 << 3)

    .section .text.start, "ax"
    .globl _start
_start:
    csrw    mie, zero
    csrci   mstatus, MSTATUS_MIE
    la      t0, trap_entry
    csrw    mtvec, t0
    csrr    s0, mhartid
    li      t0, NHARTS
    bgeu    s0, t0, park

    /* wait until turn == mhartid (hart 0 never waits) */
    la      s1, turn
1:  lw      t0, 0(s1)
    bne     t0, s0, 1b
    fence   rw, rw

    la      a0, msg_hart
    jal     ra, puts
    addi    a0, s0, '0'         /* hart ids 0..9 */
    jal     ra, putc
    li      a0, '\n'
    jal     ra, putc

    fence   rw, rw
    addi    t0, s0, 1
    sw      t0, 0(s1)           /* next hart's turn */
    bnez    s0, park

    /* hart 0: wait for every hart, then arm the machine timer */
    li      t1, NHARTS
2:  lw      t0, 0(s1)
    bne     t0, t1, 2b

    li      t0, MTIME_ADDR
    ld      t1, 0(t0)
    li      t2, TIMER_DELTA
    add     t1, t1, t2
    li      t0, MTIMECMP_BASE   /* hart 0's mtimecmp */
    sd      t1, 0(t0)
    li      t0, MIE_MTIE
    csrs    mie, t0
    csrsi   mstatus, MSTATUS_MIE
park:
    wfi
    j       park

/* puts: a0 = NUL-terminated string; clobbers a0, t0-t3, saves ra in t3 */
puts:
    mv      t3, ra
    mv      t2, a0
1:  lbu     a0, 0(t2)
    beqz    a0, 2f
    jal     ra, putc
    addi    t2, t2, 1
    j       1b
2:  mv      ra, t3
    ret

/* putc: a0 = byte; clobbers t0, t1 */
putc:
    li      t0, UART_BASE
1:  lbu     t1, UART_LSR(t0)
    andi    t1, t1, UART_LSR_THRE
    beqz    t1, 1b
    sb      a0, 0(t0)
    ret

    .align  4
trap_entry:
    csrr    t0, mcause
    li      t1, (1 << 63) | 7   /* machine timer interrupt */
    bne     t0, t1, park_off
    /* silence the timer: mtimecmp[hart] = ~0 */
    csrr    t0, mhartid
    slli    t0, t0, 3
    li      t1, MTIMECMP_BASE
    add     t0, t0, t1
    li      t1, -1
    sd      t1, 0(t0)
    la      a0, msg_timer
    jal     ra, puts
#if POWEROFF
    li      t0, TEST_BASE
    li      t1, TEST_POWEROFF
    sw      t1, 0(t0)
#endif
park_off:
    csrw    mie, zero
1:  wfi
    j       1b

    .section .rodata
msg_hart:
    .asciz  "hello from hart "
msg_timer:
    .asciz  "hello from timer interrupt\n"

    /*
     * .data, not .bss: the ELF loader re-copies initialised data on every
     * system reset, so a reset machine starts again with turn == 0.
     */
    .section .data
    .align  3
turn:
    .word   0
