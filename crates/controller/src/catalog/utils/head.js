// whisk.system/utils/head (as OpenWhisk's catalog): the first `num` (default 1) of `lines`.
function main(msg) {
    var lines = msg.lines || [];
    var num = msg.num || 1;
    var head = lines.slice(0, num);
    console.log('head get first ' + num + ' lines of ' + lines + ': ' + head);
    return {lines: head, num: num};
}
