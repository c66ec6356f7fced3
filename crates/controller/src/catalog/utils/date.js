// whisk.system/utils/date (as OpenWhisk's catalog): the current date and time.
function main() {
    var now = new Date();
    console.log('It is now ' + now);
    return { date: now };
}
