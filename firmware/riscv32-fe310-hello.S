/*
 * riscv32-fe310-hello: bare-metal M-mode demo firmware for boards/fe310.yaml
 * (an rv32 E31 hart; the memory map of QEMU's -M sifive_e):
 *   XIP flash   0x20400000  (entry point, the hart's reset vector)
 *   UART0       0x10013000  (SiFive UART: txdata +0, txctrl +8, ie +0x10), PLIC source 3
 *   PLIC        0x0c000000  (priority +4*id, enable 0x2000, threshold/claim 0x200000/4)
 *   CLINT       0x02000000  (mtimecmp 0x2004000, mtime 0x200bff8)
 *   sifive_test 0x00100000  (write 0x5555 = power off; not on the FE310:
 *                            a test variant adds it, see tests/apply)
 *
 * Prints "hello from the fe310", takes UART0's transmit-watermark interrupt
 * through the PLIC ("hello from plic source 3"), then a machine timer
 * interrupt through the CLINT ("hello from timer interrupt"), and powers
 * off (POWEROFF=1) or parks. No RAM is used: no stack, no data.
 */

#ifndef POWEROFF
#define POWEROFF 1
#endif

#define UART_BASE     0x10013000
#define UART_TXCTRL   8
#define UART_IE       0x10
#define PLIC_BASE     0x0c000000
#define PLIC_ENABLE   0x2000
#define PLIC_CLAIM    0x200004
#define MTIMECMP      0x02004000
#define MTIME         0x0200bff8
#define TEST_BASE     0x00100000
#define MIE_MTIE      (1 << 7)
#define MIE_MEIE      (1 << 11)
#define MSTATUS_MIE   (1 << 3)

    .section .text.start, "ax"
    .globl _start
_start:
    csrw    mie, zero
    la      t0, trap_entry
    csrw    mtvec, t0
    li      s0, UART_BASE
    li      t0, (1 << 16) | 1   /* txcnt = 1 (watermark), txen */
    sw      t0, UART_TXCTRL(s0)
    la      a0, msg_hello
    jal     ra, puts

    li      s1, PLIC_BASE
    li      t0, 1
    /* priority of source 3 (UART0): QEMU's sifive_e PLIC (priority-base
       0x04) keeps source n's priority at 0x04 + 4 * n */
    sw      t0, 4 + 4 * 3(s1)
    li      t1, PLIC_ENABLE
    add     t1, t1, s1
    li      t0, 1 << 3
    sw      t0, 0(t1)           /* enable source 3 for hart 0's M context */
    li      t0, 1
    sw      t0, UART_IE(s0)     /* UART0: transmit-watermark interrupt on */
    li      t0, MIE_MEIE
    csrw    mie, t0
    csrsi   mstatus, MSTATUS_MIE
1:  wfi
    j       1b

    .balign 4
trap_entry:
    csrr    t0, mcause
    bgez    t0, park            /* an exception: stop here */
    andi    t0, t0, 0xff
    li      t1, 11
    beq     t0, t1, external
    li      t1, 7
    beq     t0, t1, timer
    j       park

external:
    li      s2, PLIC_BASE + PLIC_CLAIM
    lw      s3, 0(s2)           /* claim */
    sw      zero, UART_IE(s0)   /* the watermark stays pending: switch it off */
    la      a0, msg_plic
    jal     ra, puts
    addi    a0, s3, '0'
    jal     ra, putc
    li      a0, '\n'
    jal     ra, putc
    sw      s3, 0(s2)           /* complete */
    li      t0, MTIME
    lw      t1, 0(t0)
    lw      t2, 4(t0)
    li      t3, 1000
    add     t1, t1, t3
    li      t0, MTIMECMP
    li      t3, -1
    sw      t3, 4(t0)
    sw      t1, 0(t0)
    sw      t2, 4(t0)
    li      t0, MIE_MTIE
    csrw    mie, t0
    mret

timer:
    csrw    mie, zero
    la      a0, msg_timer
    jal     ra, puts
#if POWEROFF
    li      t0, TEST_BASE
    li      t1, 0x5555
    sw      t1, 0(t0)
#endif
park:
    csrw    mie, zero
1:  wfi
    j       1b

/* puts(a0): print a NUL-terminated string; uses t0-t2, a0. */
puts:
    mv      t2, ra
    mv      t1, a0
2:  lbu     a0, 0(t1)
    beqz    a0, 3f
    jal     ra, putc
    addi    t1, t1, 1
    j       2b
3:  mv      ra, t2
    ret

/* putc(a0): one character to UART0 (waits while the FIFO is full); uses t0. */
putc:
4:  lw      t0, 0(s0)
    bltz    t0, 4b
    sw      a0, 0(s0)
    ret

    .section .rodata
msg_hello:  .asciz "hello from the fe310\n"
msg_plic:   .asciz "hello from plic source "
msg_timer:  .asciz "hello from timer interrupt\n"
