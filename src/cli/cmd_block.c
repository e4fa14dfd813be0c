/* cmd_block.c */
